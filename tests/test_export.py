import h5py
import numpy as np
import pytest
import torch

import lava_qpsnn.export.writer as export
from lava_qpsnn.errors import ExportError, OutputPathError
from lava_qpsnn.export.summary import signed_weight_bits
from lava_qpsnn.netx.metadata import read_net_info
from netx_export import export_netx


def test_exported_file_loads_in_unmodified_netx(mlp_files, mlp_checkpoint):
    from lava.lib.dl import netx

    _, path = mlp_files
    net = netx.hdf5.Network(net_config=str(path))
    assert len(net.layers) == 2
    assert net.inp.shape == (64,) and net.out.shape == (10,)
    info = read_net_info(path)
    assert info.encoding == mlp_checkpoint.encoding and info.num_spiking_layers == 2


def test_conv_export_shapes(conv_net):
    from lava.lib.dl import netx

    net = netx.hdf5.Network(net_config=str(conv_net))
    assert net.inp.shape == (8, 8, 1)  # Lava's W, H, C
    assert [layer.out.shape for layer in net.layers] == [(8, 8, 4), (4, 4, 8), (10,)]


# Latent weights set by hand (each layer tiles a pattern) and the integers and threshold netx must read,
# worked out by hand from the hooks' definitions (slayer's w_scale is 64):
# - slayer's default hook (no QuantConfig): n = 2 * round(W * 64 / 2), vth = threshold * 64 = 64;
# - 2-bit symmetric ReScaW: gamma = mean |W|, m = round(clip(W / gamma, -1, 1)) in {-1, 0, 1}, n = m * 2^7,
#   vth = round(threshold * 2^7 * S / gamma) with S = 1.
HAND_LAYERS = {  # quant -> [(pattern of W, its integers, vth) per layer]
    None: [
        ([0.5, -0.25, 0.1, -0.03], [32, -16, 6, -2], 64),  # 0.1 * 32 = 3.2 -> 3 -> 6; -0.96 -> -1 -> -2
        ([0.3, -0.7, 0.02], [20, -44, 2], 64),  # 9.6 -> 10; -22.4 -> -22; 0.64 -> 1
    ],
    "2-bit": [
        ([0.9, -0.6, 0.2, -0.1], [128, -128, 0, 0], 284),  # gamma 0.45: W / gamma = 2, -1.33, 0.44, -0.22; 128 / 0.45
        ([0.3, -0.5, 0.1], [128, -128, 0], 427),  # gamma 0.3: 1, -1.67, 0.33; 128 / 0.3 = 426.7
    ],
}


@pytest.mark.parametrize("quant", list(HAND_LAYERS), ids=["slayer-8bit", "rescaw-2bit"])
def test_weights_and_thresholds_are_the_integers_worked_out_by_hand(quant, tmp_path):
    from lava_qpsnn.data import Encoding
    from lava_qpsnn.training.checkpoint import Checkpoint
    from lava_qpsnn.training.models import build_model
    from lava_qpsnn.training.quantize import QuantConfig, quantize_model
    from lava_qpsnn.training.specs import ModelConfig

    config = None if quant is None else QuantConfig(2, first_last_bits=None, grid="symmetric")
    net = build_model(ModelConfig.from_arch("3-10", (1, 8, 8), 10))
    if config is not None:
        quantize_model(net, config)
    layers = HAND_LAYERS[quant]
    with torch.no_grad():
        for block, (pattern, _, _) in zip(net.blocks, layers, strict=True):
            rows, cols = block.synapse.weight.shape[:2]
            latent = np.tile(pattern, (rows, cols // len(pattern)))
            block.synapse.weight.copy_(torch.tensor(latent).reshape(block.synapse.weight.shape))
    checkpoint = Checkpoint.of(net, dataset="digits", encoding=Encoding(time_steps=12, seed=3), quant=config)
    export_netx(checkpoint, tmp_path / "hand.net")
    with h5py.File(tmp_path / "hand.net", "r") as f:
        for i, (pattern, integers, vth) in enumerate(layers, start=1):
            stored = f[f"layer/{i}/weight"][()]
            assert stored.dtype.kind == "i"
            np.testing.assert_array_equal(stored, np.tile(integers, (stored.shape[0], stored.shape[1] // len(pattern))))
            assert f[f"layer/{i}/neuron/vThMant"][()] == vth


def test_signed_weight_bits():
    assert signed_weight_bits(np.array([-20, 20, 6])) == 5  # netx's own example
    assert signed_weight_bits(np.array([-256, 254])) == 8
    assert signed_weight_bits(np.array([-1, 1])) == 2
    assert signed_weight_bits(np.array([0, 0])) == 1
    assert signed_weight_bits(np.array([-128, 127])) == 8


def test_never_overwrites_without_force(mlp_checkpoint, tmp_path):
    path = tmp_path / "model.net"
    path.write_bytes(b"precious")
    with pytest.raises(OutputPathError, match="exists"):
        export_netx(mlp_checkpoint, path)
    assert path.read_bytes() == b"precious"
    export_netx(mlp_checkpoint, path, force=True)
    assert h5py.is_hdf5(path)


def test_failure_mid_write_leaves_no_file(mlp_checkpoint, tmp_path, monkeypatch):
    path = tmp_path / "model.net"

    def broken(*args):
        raise ExportError("simulated failure")

    monkeypatch.setitem(export._writers(), type(mlp_checkpoint.build().blocks[1]), broken)
    with pytest.raises(ExportError, match="simulated"):
        export_netx(mlp_checkpoint, path)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_block_is_named(mlp_checkpoint, tmp_path, monkeypatch):
    from lava.lib.dl import slayer

    net = mlp_checkpoint.build()
    net.blocks.append(slayer.block.cuba.Affine({"threshold": 1.0, "current_decay": 1.0, "voltage_decay": 0.5}, 10, 4))
    monkeypatch.setattr(type(mlp_checkpoint), "build", lambda self: net)
    with pytest.raises(ExportError, match=r"cannot export blocks.2 \(Affine\).*supports"):
        export_netx(mlp_checkpoint, tmp_path / "model.net")
    assert not (tmp_path / "model.net").exists()


def test_missing_output_folder(mlp_checkpoint, tmp_path):
    with pytest.raises(OutputPathError, match="does not exist"):
        export_netx(mlp_checkpoint, tmp_path / "no" / "such" / "model.net")


def test_every_byte_netx_reads_is_under_a_checksum(mlp_files):
    """HDF5 1.10 format (checksummed superblock, headers, B-trees and heaps), every dataset inside its
    object header or in Fletcher-32 chunks, no variable-length value (the global heap has no checksum)."""
    _, net = mlp_files
    assert net.read_bytes()[8] >= 2  # superblock version: 2 and up carry a checksum
    layouts = {}
    with h5py.File(net) as f:
        f.visititems(lambda name, item: layouts.update({name: item}) if isinstance(item, h5py.Dataset) else None)
        for name, item in layouts.items():
            compact = item.id.get_create_plist().get_layout() == h5py.h5d.COMPACT
            assert compact or item.fletcher32, name
            string = h5py.check_string_dtype(item.dtype)
            assert h5py.check_vlen_dtype(item.dtype) is None and (string is None or string.length is not None)
            layouts[name] = "compact" if compact else "chunked"
        for value in f.attrs.values():
            assert isinstance(value, np.bytes_)
    assert layouts["layer/1/weight"] == "chunked" and layouts["layer/2/weight"] == "compact"  # 4096 and 640 bytes


@pytest.mark.parametrize("layer", [1, 2])
def test_a_damaged_weight_is_a_read_error_not_another_network(mlp_files, tmp_path, layer):
    """One flipped bit in a chunked (layer 1) or compact (layer 2) weight array is refused on reading."""
    from lava_qpsnn.errors import NetxFileError
    from lava_qpsnn.netx import read_netx

    _, net = mlp_files
    with h5py.File(net) as f:
        weight = f[f"layer/{layer}/weight"][()]
    data = bytearray(net.read_bytes())
    offset = data.index(weight.tobytes())
    data[offset + 3] ^= 0x10
    damaged = tmp_path / "damaged.net"
    damaged.write_bytes(bytes(data))
    read_netx(net)  # the original reads
    with pytest.raises(NetxFileError, match=r"damaged\.net") as info:
        read_netx(damaged)
    assert "\n" not in str(info.value)
