import subprocess
import sys


def test_importing_vsr_is_cheap():
    """vsr, its CLI module, models and weights load no exporter, runtime or trainer."""
    code = (
        "import sys, vsr, vsr.cli, vsr.models, vsr.weights, vsr.images, vsr.metrics\n"
        "heavy = ('torch.onnx._internal.exporter', 'onnxscript', 'onnx', 'openvino', 'tensorrt', 'train', 'engines')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_vsr_never_imports_train():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "vsr"
    offenders = [p for p in root.rglob("*.py") if "import train" in p.read_text() or "from train" in p.read_text()]
    assert offenders == []
