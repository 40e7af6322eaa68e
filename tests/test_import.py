"""The packages depend one way: engines ← vsr ← train (engines imports neither, vsr never imports train), and
importing vsr loads nothing heavy."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"engines": set(), "vsr": {"engines"}, "train": {"vsr", "engines"}}  # package → what it may import


def _imports(path: Path) -> set[str]:
    """Top-level package names of every import in a file, those inside functions included."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_one_dependency_direction():
    offenders = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            bad = (_imports(path) & set(ALLOWED)) - allowed - {package}
            offenders += [f"{path.relative_to(ROOT)} imports {b}" for b in sorted(bad)]
    assert offenders == []


def test_importing_vsr_is_cheap():
    """vsr, its CLI, models, weights and pictures load no exporter, runtime, engine or trainer."""
    code = (
        "import sys, vsr, vsr.cli, vsr.models, vsr.zoo, vsr.weightfile, vsr.picture, vsr.metrics\n"
        "heavy = ('torch.onnx._internal.exporter', 'onnxscript', 'onnx', 'openvino', 'tensorrt', 'train', 'engines')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    bare = subprocess.run([sys.executable, "-c", "import sys, vsr; print(sorted(m for m in sys.modules if "
                          "m.split('.')[0] in ('torch', 'av', 'numpy', 'engines', 'train', 'openvino')))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert bare == "[]"
