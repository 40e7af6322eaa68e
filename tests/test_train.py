import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from train.checkpoint import TrainError, load_checkpoint
from train.config import ConfigError, config_from_dict, load_config
from train.export import export
from train.loop import train
from train.sampler import TrainData
from train.store import DataError, load_sources
from vsr._testclips import make_clip, scene
from vsr.resize import imresize
from vsr.weightfile import load_weights


def _images(folder: Path, n=4, size=(64, 80)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(scene(*size, i, seed=i)).save(folder / f"img{i}.png")
    return folder


def _cfg(tmp_path, folders, **sections):
    base = {
        "model": {"arch": "edsr", "scale": 2, "params": {"blocks": 2, "features": 16}},
        "data": {"train": [str(d) for d in folders], "patch": 16, "batch": 4, "cache_dir": str(tmp_path / "cache")},
        "optim": {"steps": 4, "warmup": 1, "lr": 1e-3},
        "run": {"out": str(tmp_path / "runs"), "name": "t", "precision": "fp32", "checkpoint_every": 2, "log_every": 1},
    }
    for k, v in sections.items():
        base[k] = {**base.get(k, {}), **v}
    return config_from_dict(base)


# -- config --------------------------------------------------------------------------------


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text('[optim]\nlrr = 1\n')
    with pytest.raises(ConfigError, match="'optim.lrr'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="'nosuch'"):
        load_config(None, ["nosuch.key=1"])
    with pytest.raises(ConfigError, match="'optim.steps'"):
        load_config(None, ["optim.steps='many'"])
    with pytest.raises(ConfigError, match="scale"):
        load_config(None, ["model.arch='mfsr'", "model.scale=5"])
    with pytest.raises(ConfigError, match="'model.arch'"):
        load_config(None, ["model.arch='mf-fast'"])


def test_config_file_and_overrides(tmp_path):
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('[model]\narch = "espcn"\nscale = 3\n[optim]\nlr = 0.001\n')
    cfg = load_config(cfg_file, ["optim.lr=5e-4", 'data.train=["a", "b"]', "optim.betas=[0.8, 0.9]"])
    assert cfg.model.arch == "espcn" and cfg.optim.lr == 5e-4 and cfg.data.train == ["a", "b"]
    assert cfg.optim.betas == (0.8, 0.9) and cfg.run.name == "c"


def test_a_config_says_only_what_differs_from_the_one_it_inherits(tmp_path):
    (tmp_path / "base.toml").write_text('[model]\narch = "window"\nscale = 4\nparams = {window = 3, features = 32}\n'
                                        '[optim]\nlr = 0.001\nsteps = 100\n')
    (tmp_path / "x2.toml").write_text('inherit = "base.toml"\n[model]\nscale = 2\nparams = {features = 16}\n'
                                      '[optim]\nsteps = 10\n')
    cfg = load_config(tmp_path / "x2.toml")
    assert (cfg.model.arch, cfg.model.scale, cfg.optim.lr, cfg.optim.steps) == ("window", 2, 0.001, 10)
    assert cfg.model.params == {"window": 3, "features": 16}
    (tmp_path / "loop.toml").write_text('inherit = "loop.toml"\n')
    with pytest.raises(ConfigError, match="inherits from itself"):
        load_config(tmp_path / "loop.toml")


ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "train" / "configs"
BASE = CONFIGS / "base.toml"
# What a shipped weight file may record otherwise: where its run, its cache and its runs folder were, and what it
# started from (a stage's run, named as the config that makes it is now named).
WHERE = {"run.name", "run.out", "data.cache_dir", "model.init"}
# Shipped weights whose run was continued with `python -m train --resume RUN --set ...` (their configs say so).
RESUMED = {"mf-fast_x3": ["optim.steps=2500"]}


def _configs() -> list[Path]:
    return sorted(p for p in CONFIGS.rglob("*.toml") if p != BASE)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "params":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = list(v) if isinstance(v, tuple) else v
    return out


def _hparams(arch: str, hparams: dict) -> dict:
    """An architecture's full keyword arguments: the class's defaults under the given ones."""
    import inspect

    from vsr.models import ARCHITECTURES

    sig = inspect.signature(ARCHITECTURES[arch].__init__)
    defaults = {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
    return {**defaults, **hparams}


def test_every_config_parses_and_builds_on_the_base():
    import tomllib

    from vsr.models import build

    assert _configs()
    for path in _configs():
        cfg = load_config(path)
        assert cfg.run.name == path.stem  # a run is named after its config
        build(cfg.model.arch, scale=cfg.model.scale, **cfg.model.params)
        chain, p = [], path
        while "inherit" in (data := tomllib.loads(p.read_text())):
            p = (p.parent / data["inherit"]).resolve()
            chain.append(p)
        assert chain and chain[-1] == BASE.resolve(), f"{path.name} does not build on base.toml"


@pytest.mark.parametrize("weights", sorted((ROOT / "vsr" / "weights").glob("*.safetensors")), ids=lambda p: p.stem)
def test_a_shipped_config_resolves_to_what_its_weights_record(weights):
    """Each shipped weight file records the config that trained it: the config of its name resolves to the same
    values, but for where runs and caches went and what a stage started from (WHERE). Keys the trainer has gained
    since hold their default (it is what ran before them); keys it has dropped were recorded at their off value
    (train.config.RETIRED). Weights trained when ``model.name`` chose the architecture are compared by what they
    built: the arch and hyperparameters in the file."""
    from train.config import RETIRED, TrainConfig
    from vsr.weightfile import read_info

    info = read_info(weights)
    recorded = info.training["config"]
    path = CONFIGS / f"{weights.stem}.toml"
    assert path.exists(), f"no config for {weights.name}"
    cfg = load_config(path, RESUMED.get(weights.stem, []))
    assert cfg.model.arch == info.arch and cfg.model.scale == info.scale
    assert _hparams(cfg.model.arch, {**cfg.model.params, "scale": cfg.model.scale}) == _hparams(info.arch, info.hparams)
    ours, theirs, default = _flat(cfg.to_dict()), _flat(recorded), _flat(TrainConfig().to_dict())
    if "arch" not in recorded["model"]:  # the architecture came from model.name then: compared above
        for key in ("model.arch", "model.params"):
            ours.pop(key), theirs.pop(key, None)
    for key in sorted(set(ours) | set(theirs)):
        if key in WHERE:
            continue
        if key not in theirs:
            assert ours[key] == default[key], f"{key}: {ours[key]!r}, but the weights were trained before it existed"
        elif key not in ours:
            assert key in RETIRED and RETIRED[key] in (theirs[key], ...), f"{key} = {theirs[key]!r} is recorded"
        elif key == "run.precision" and ours[key] == "auto":
            assert theirs[key] in ("auto", "bf16")  # what "auto" picks on the CPUs these weights were trained on
        else:
            assert ours[key] == theirs[key], f"{key}: the config says {ours[key]!r}, the weights {theirs[key]!r}"


def test_every_config_is_shipped_a_stage_of_a_shipped_one_or_an_architecture():
    shipped = {p.stem for p in (ROOT / "vsr" / "weights").glob("*.safetensors")}
    configs = {p: load_config(p) for p in _configs()}
    inits = {c.model.init for c in configs.values()}
    for path, cfg in configs.items():
        kind = ("shipped" if path.stem in shipped and path.parent == CONFIGS else
                "stage" if f"runs/{cfg.run.name}" in inits else
                "architecture" if path.parent == CONFIGS / "arch" else None)
        assert kind, f"{path.relative_to(CONFIGS)}: no shipped weights, no config starts from its run, not in arch/"
        if kind == "architecture":
            from vsr.zoo import ZOO

            assert cfg.model.arch not in {c.model.arch for p, c in configs.items() if p.parent == CONFIGS}
            assert not any(e.name == cfg.model.name for e in ZOO)


def test_config_comments_carry_no_measurements():
    """Speeds and scores belong in BENCHMARKS.md: measured on one machine, they mislead on another."""
    import re

    unit = re.compile(r"\d\s*(dB|it/s|steps/s|fps|min\b|s/step)|~\s*\d|≈")
    for path in [BASE, *_configs()]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            comment = line.partition("#")[2]
            assert not unit.search(comment), f"{path.name}:{n}: {comment.strip()}"


# -- data ----------------------------------------------------------------------------------


def test_plain_folder_and_div2k_layout(tmp_path):
    plain = _images(tmp_path / "plain")
    div2k = tmp_path / "DIV2K"
    hr_dir, lr_dir = div2k / "DIV2K_train_HR", div2k / "DIV2K_train_LR_bicubic" / "X2"
    hr_dir.mkdir(parents=True)
    lr_dir.mkdir(parents=True)
    for i in range(2):
        img = scene(64, 80, i)
        Image.fromarray(img).save(hr_dir / f"{i + 1:04d}.png")
        Image.fromarray(img[::2, ::2]).save(lr_dir / f"{i + 1:04d}x2.png")
    stills, videos = load_sources([str(plain), str(div2k)], 2, tmp_path / "cache")
    assert len(stills) == 6 and not videos
    data = TrainData(stills, videos, scale=2, patch=12, frames=1)
    lr, hr = data.batch(np.random.default_rng(0), 3)
    assert lr.shape == (3, 1, 3, 12, 12) and hr.shape == (3, 1, 3, 24, 24)
    # the LR of a plain folder is MATLAB-bicubic of the HR, crop for crop
    from vsr.resize import imresize

    seq = stills[0]
    assert np.array_equal(np.asarray(seq.lr[0]), imresize(np.asarray(seq.hr[0]), 0.5))


def test_mismatched_div2k_pairs_and_empty_folders(tmp_path):
    div2k = tmp_path / "D"
    (div2k / "HR").mkdir(parents=True)
    (div2k / "LR_bicubic" / "X2").mkdir(parents=True)
    Image.fromarray(scene(40, 40, 0)).save(div2k / "HR" / "0001.png")
    Image.fromarray(scene(30, 30, 0)).save(div2k / "LR_bicubic" / "X2" / "0001x2.png")
    with pytest.raises(DataError, match="not ×2 apart"):
        load_sources([str(div2k)], 2, tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images or videos"):
        load_sources([str(tmp_path / "empty")], 2, tmp_path / "c")
    with pytest.raises(DataError, match="not found"):
        load_sources([str(tmp_path / "missing")], 2, tmp_path / "c")


def test_video_layouts_reds_vimeo_files_and_pseudo(tmp_path):
    reds = tmp_path / "REDS" / "train_sharp"
    for seq in ("000", "001"):
        (reds / seq).mkdir(parents=True)
        for t in range(5):
            Image.fromarray(scene(48, 64, t, seed=int(seq))).save(reds / seq / f"{t:08d}.png")
    vimeo = tmp_path / "vimeo"
    d = vimeo / "sequences" / "00001" / "0001"
    d.mkdir(parents=True)
    for t in range(1, 8):
        Image.fromarray(scene(48, 64, t)).save(d / f"im{t}.png")
    (vimeo / "sep_trainlist.txt").write_text("00001/0001\n")
    vids = tmp_path / "videos"
    vids.mkdir()
    make_clip(vids / "a.mp4", width=64, height=48, frames=6, audio=False)
    stills, videos = load_sources([str(tmp_path / "REDS"), str(vimeo), str(vids)], 2, tmp_path / "cache")
    assert len(videos) == 4 and [v.hr.shape[0] for v in videos] == [5, 5, 7, 6]
    data = TrainData(stills, videos, scale=2, patch=8, frames=3)
    lr, hr = data.batch(np.random.default_rng(0), 4)
    assert lr.shape == (4, 3, 3, 8, 8) and hr.shape == (4, 3, 3, 16, 16)
    # still images become pseudo-video with real motion between frames
    stills, _ = load_sources([str(_images(tmp_path / "stills", size=(96, 96)))], 2, tmp_path / "cache")
    pseudo = TrainData(stills, [], scale=2, patch=12, frames=3)
    lr, hr = pseudo.batch(np.random.default_rng(1), 4)
    assert lr.shape == (4, 3, 3, 12, 12)
    assert (lr[:, 0] - lr[:, 1]).abs().mean() > 1e-3  # the camera moved


def test_realistic_degradation_is_reproducible_and_configurable():
    from train.config import DegradeConfig
    from train.degrade import RealisticDegradation

    hr = np.stack([scene(64, 64, t) for t in range(3)])
    deg = RealisticDegradation(4)
    runs = {seed: deg(hr, np.random.default_rng(seed)) for seed in (7, 7, 8)}
    a = deg(hr, np.random.default_rng(7))
    assert a.shape == (3, 16, 16, 3) and a.dtype == np.uint8 and np.array_equal(a, runs[7])
    assert not np.array_equal(a, runs[8])
    # every share at 0 but `plain`: exactly the BI LR; the codec step alone changes it, keeping count and shape
    clean = RealisticDegradation(4, DegradeConfig(plain=1.0, codec=0.0))(hr, np.random.default_rng(0))
    bi = np.stack([imresize(f, 0.25) for f in hr])
    assert np.abs(clean.astype(int) - bi).max() <= 1
    coded = RealisticDegradation(4, DegradeConfig(plain=1.0, codec=1.0, crf=(40, 40)))(hr, np.random.default_rng(0))
    assert coded.shape == bi.shape and np.abs(coded.astype(int) - bi).mean() > 1
    steps = RealisticDegradation(4, DegradeConfig(plain=0.0, second_round=1.0, blur=1.0, noise=1.0, jpeg=1.0,
                                                  codec=1.0)).steps(hr, np.random.default_rng(1))
    assert [n for n, _ in steps] == ["blur 1", "resize 1", "noise 1", "jpeg 1", "blur 2", "resize 2", "noise 2",
                                     "jpeg 2", "to LR size", "codec"]
    assert config_from_dict({"model": {"arch": "mfsr"}}, ["degrade.crf=[20, 30]"]).degrade.crf == (20, 30)


def test_each_degradation_step_does_what_it_says():
    from train import degrade

    rng = np.random.default_rng(0)
    x = np.stack([scene(64, 64, t, speed=3.0) for t in range(4)]).astype(np.float32) / 255

    def detail(v):  # mean gradient magnitude
        return np.abs(np.diff(v, axis=2)).mean()

    texture = rng.random((2, 32, 32, 3), dtype=np.float32)
    assert detail(degrade.blur(texture, rng, 2.0, 2.0)) < 0.3 * detail(texture)
    assert degrade.resize(x, rng, 40, 24).shape == (4, 40, 24, 3)
    for seed in range(6):  # Gaussian or Poisson, colour or grey: noise of zero mean, values stay in range
        n = degrade.noise(x, np.random.default_rng(seed), 10.0, 10.0)
        assert n.shape == x.shape and 0 <= n.min() and n.max() <= 1
        assert 0.005 < np.abs(n - x).mean() < 0.1 and abs((n - x).mean()) < 0.01
    j = degrade.jpeg(x, 20)
    assert j.shape == x.shape and 0.005 < np.abs(j - x).mean() < 0.1
    c = degrade.codec(x, rng, (36, 36), hevc=0.5)
    assert c.shape == x.shape and 0.002 < np.abs(c - x).mean() < 0.1
    # the codec gives frames back in order: each is nearest its own input
    assert all(np.argmin([np.abs(c[i] - x[k]).mean() for k in range(4)]) == i for i in range(4))


# -- training ------------------------------------------------------------------------------

# the shipped models' architectures (the others train through their configs: test_an_architecture_config_…)
FAMILIES = {
    "mfsr": {"features": 8, "blocks": 1, "flow_features": 8},
    "window": {"window": 3, "state": True, "features": 8, "blocks": 1},
}


@pytest.mark.parametrize("arch", list(FAMILIES))
def test_each_family_trains(tmp_path, arch):
    data = _images(tmp_path / "imgs", size=(96, 96))
    extra = {"loss": {"flow_weight": 0.1}} if arch == "mfsr" else {}
    frames = 4 if arch in ("mfsr", "window") else 0
    cfg = _cfg(tmp_path, [data], model={"arch": arch, "params": FAMILIES[arch]}, data={"patch": 16, "frames": frames},
               **extra)
    run = train(cfg, quiet=True)
    ck = load_checkpoint(run / "checkpoint.pt")
    assert ck["step"] == 4 and np.isfinite([h["loss"] for h in ck["history"] if "loss" in h]).all()
    if arch == "mfsr":  # the learned alignment was trained with its photometric loss
        assert all(np.isfinite(h["flow"]) for h in ck["history"] if "loss" in h)


def _tiny(tmp_path, *, val: Path | None = None) -> list[str]:
    """Overrides that make any config a run of two steps on a few small PNGs in tmp_path."""
    data = _images(tmp_path / "imgs", n=3, size=(48, 48))
    return [f"data.train={json.dumps([str(data)])}", f"val.folders={json.dumps([str(val)] if val else [])}",
            "val.every=0", "data.patch=8", "data.batch=2", "optim.steps=2", "optim.warmup=1",
            f"run.out={json.dumps(str(tmp_path / 'runs'))}", "run.precision='fp32'", "run.threads=0"]


# the biggest networks at test size (their configs' sizes are the classes' defaults: tests/test_models.py builds those)
SMALLER = {"rrdb": "{features = 16, blocks = 2, growth = 8}", "edsr": "{features = 16, blocks = 2}",
           "srresnet": "{features = 16, blocks = 2}"}


@pytest.mark.parametrize("path", sorted((CONFIGS / "arch").glob("*.toml")), ids=lambda p: p.stem)
def test_an_architecture_config_trains_exports_and_upscales(path, tmp_path, cli):
    """Each architecture without shipped weights has a config a researcher starts from: it trains (two steps, on
    tiny data), its run exports, and `vsr image` runs the exported file, announcing it by the run's name."""
    arch = load_config(path).model.arch
    smaller = [f"model.params={SMALLER[arch]}"] if arch in SMALLER else []
    cfg = load_config(path, _tiny(tmp_path, val=_images(tmp_path / "val", n=1, size=(32, 32))) + smaller)
    run = train(cfg, quiet=True)
    assert (run / "best.pt").exists()
    out = export(run, tmp_path / "mine.safetensors")
    Image.fromarray(scene(20, 24, 0)).save(tmp_path / "p.png")
    rc, _, err = cli("image", tmp_path / "p.png", tmp_path / "up.png", "-m", out, "--backend", "torch")
    assert rc == 0, err
    assert f"model {path.stem} ×{cfg.model.scale}" in err
    assert Image.open(tmp_path / "up.png").size == (24 * cfg.model.scale, 20 * cfg.model.scale)


def test_a_first_run_on_your_own_folder(tmp_path, monkeypatch, capsys):
    """Outside this repository's data layout (no ../shared/data) a config's errors say which option points it at
    one's own images, and README's command trains on them."""
    from train.__main__ import main

    checkout = tmp_path / "checkout"  # vsr's files, without ../shared/data beside them
    (checkout / "vsr").mkdir(parents=True)
    (checkout / "vsr" / "weights").symlink_to(ROOT / "vsr" / "weights")
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("HOME", str(tmp_path))
    _images(tmp_path / "my_photos", n=3, size=(48, 48))
    config = str(CONFIGS / "sr-lite_x2.toml")
    small = [a for o in ("data.patch=16", "data.batch=2", "optim.steps=1", "run.precision='fp32'", "run.threads=0")
             for a in ("--set", o)]

    assert main([config, *small]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: training data not found: ../shared/data/train_images/") and "--data PATH" in err
    assert len(err.splitlines()) == 1
    assert main([config, "--data", "~/my_photos", *small]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: validation data not found: ../shared/data/val/Set5") and "val.folders" in err
    assert main([config, "--data", "~/my_photos", "--set", "val.folders=[]", *small]) == 0
    saved = json.loads((checkout / "runs" / "sr-lite_x2" / "config.json").read_text())
    assert saved["data"]["train"] == [str(tmp_path / "my_photos")] and saved["data"]["exclude"] == []
    assert "--data" in subprocess.run([sys.executable, "-m", "train", "--help"], capture_output=True, text=True,
                                      cwd=ROOT).stdout


def test_exported_weights_are_named_after_the_run_never_a_shipped_model(tmp_path, cli):
    """A user's weights are announced by their own name: the run's (or the file's), a shipped model's only when
    export --name gives it."""
    from train.__main__ import main

    data = _images(tmp_path / "imgs")
    mine = train(_cfg(tmp_path, [data], optim={"steps": 1}, run={"name": "my-run"}), quiet=True)
    assert main(["export", str(mine), str(tmp_path / "out.safetensors")]) == 0
    assert load_weights(tmp_path / "out.safetensors")[1].name == "my-run"
    Image.fromarray(scene(20, 24, 0)).save(tmp_path / "p.png")
    rc, _, err = cli("image", tmp_path / "p.png", "-m", tmp_path / "out.safetensors", "--backend", "torch")
    assert rc == 0 and "model my-run ×2" in err, err
    # a run named as a shipped model (its config's model.name too): named after the file, or refused with --name
    named = train(_cfg(tmp_path, [data], model={"name": "sr-lite"}, optim={"steps": 1}, run={"name": "sr-lite"}),
                  quiet=True)
    assert load_weights(export(named, tmp_path / "w.safetensors"))[1].name == "w"
    with pytest.raises(TrainError, match="--name sr-lite"):
        export(named, tmp_path / "sr-lite.safetensors")
    assert load_weights(export(named, tmp_path / "sr-lite.safetensors", name="sr-lite"))[1].name == "sr-lite"


def test_a_recurrent_model_learns_through_its_state(tmp_path, monkeypatch):
    """Back-propagation through the clip: the loss of the last output reaches the weights through every step."""
    from train import loop
    from train.config import TrainConfig
    from vsr.models import build

    model = build("window", scale=2, window=3, state=True, features=8, blocks=1)
    lr = torch.rand(2, 5, 3, 12, 12, requires_grad=False)
    outs, _ = loop.run_clip(model, lr, TrainConfig(), np.random.default_rng(0))
    assert len(outs) == 3 and outs[0].shape == (2, 3, 24, 24)
    steps = []
    hook = model.head.register_forward_hook(lambda m, i, o: steps.append(o))
    outs, _ = loop.run_clip(model, lr, TrainConfig(), np.random.default_rng(0))
    hook.remove()
    for s in steps:
        s.retain_grad()
    outs[-1].sum().backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in steps)  # every step, the first included


def test_a_flow_input_model_trains_on_spoilt_dis_flows(tmp_path):
    data = _images(tmp_path / "imgs", size=(96, 96))
    small = {"arch": "window", "params": {"window": 3, "state": False, "features": 8, "blocks": 1}}
    run = train(_cfg(tmp_path, [data], model=small, data={"pseudo_video": 1.0, "flow_noise": 0.5, "motion_blur": 0.5}),
                quiet=True)
    ck = load_checkpoint(run / "checkpoint.pt")
    assert ck["step"] == 4 and np.isfinite([h["loss"] for h in ck["history"] if "loss" in h]).all()
    with pytest.raises(TrainError, match="no learned aligner"):
        train(_cfg(tmp_path / "b", [data], model=small, loss={"flow_weight": 0.1}), quiet=True)
    with pytest.raises(TrainError, match="flow_noise"):
        train(_cfg(tmp_path / "c", [data], model={"arch": "mfsr", "params": {}}, data={"flow_noise": 0.5}), quiet=True)


def test_a_flow_input_model_trains_on_the_dis_level_it_is_built_with(tmp_path, monkeypatch):
    import vsr.flow

    levels = []
    real = vsr.flow.clip_flows

    def spy(x, dis=vsr.flow.FAST):
        levels.append(dis.finest_scale)
        return real(x, dis)

    monkeypatch.setattr(vsr.flow, "clip_flows", spy)
    data = _images(tmp_path / "imgs", size=(96, 96))
    fine = {"arch": "window", "params": {"window": 3, "state": False, "features": 8, "blocks": 1, "dis_finest_scale": 0}}
    run = train(_cfg(tmp_path, [data], model=fine, data={"pseudo_video": 1.0}), quiet=True)
    assert levels and set(levels) == {0}
    assert load_weights(export(run, tmp_path / "w.safetensors"))[0].dis_finest_scale == 0


def test_bf16_training_on_a_cpu_without_it_warns(tmp_path, monkeypatch):
    import engines.cpu
    from train import loop

    monkeypatch.setattr(engines.cpu, "has_native_bf16", lambda: False)
    data = _images(tmp_path / "imgs")
    with pytest.warns(UserWarning, match="emulated"):
        train(_cfg(tmp_path, [data], run={"precision": "bf16"}, optim={"steps": 1}), quiet=True)
    assert loop._autocast_dtype(_cfg(tmp_path, [data], run={"precision": "auto"}), torch.device("cpu")) is None


def test_resume_matches_an_uninterrupted_run(tmp_path):
    data = _images(tmp_path / "imgs")
    straight = train(_cfg(tmp_path / "a", [data], run={"name": "a", "out": str(tmp_path / "runs")}), quiet=True)
    cfg = _cfg(tmp_path / "b", [data], run={"name": "b", "out": str(tmp_path / "runs")})
    part = train(cfg, quiet=True, stop_after=2)
    assert load_checkpoint(part / "checkpoint.pt")["step"] == 2
    resumed = train(None, str(part), quiet=True)
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k


def test_a_new_run_never_overwrites_one_in_its_folder(tmp_path):
    data = _images(tmp_path / "imgs")
    cfg = _cfg(tmp_path, [data], run={"name": "r", "out": str(tmp_path / "runs")})
    part = train(cfg, quiet=True, stop_after=2)
    before = (part / "checkpoint.pt").read_bytes()
    with pytest.raises(TrainError, match="--resume"):
        train(cfg, quiet=True)
    assert (part / "checkpoint.pt").read_bytes() == before


def test_validation_best_checkpoint_export_and_use(tmp_path, cli):
    data = _images(tmp_path / "imgs")
    val = _images(tmp_path / "val", n=2)
    other = _images(tmp_path / "other", n=1, size=(48, 48))  # reported beside the validation set, never picks
    cfg = _cfg(tmp_path, [data], val={"folders": [str(val), str(other)], "every": 2})
    run = train(cfg, quiet=True)
    assert (run / "best.pt").exists() and (run / "curves.png").exists() and (run / "log.jsonl").exists()
    out = export(run, tmp_path / "mine.safetensors", name="mine")
    model, info = load_weights(out)
    assert info.name == "mine" and info.scale == 2
    assert info.validation["psnr"] == info.validation["val"]["psnr"] != info.validation["other"]["psnr"]
    assert info.training["config"]["model"]["arch"] == "edsr"
    best_step = load_checkpoint(run / "best.pt")["step"]
    _, latest = load_weights(export(run, tmp_path / "last.safetensors", last=True))  # a GAN ships its last step
    assert latest.validation["step"] == latest.training["steps"] == 4 and info.validation["step"] == best_step
    assert latest.validation["psnr"] == load_checkpoint(run / "checkpoint.pt")["history"][-1]["val"]["psnr"]
    Image.fromarray(scene(20, 24, 0)).save(tmp_path / "p.png")
    rc, _, err = cli("image", tmp_path / "p.png", "-m", out, "--backend", "torch", "-q")
    assert rc == 0, err


def test_weights_scored_again_on_another_set(tmp_path, capsys):
    from train.__main__ import main

    run = train(_cfg(tmp_path, [_images(tmp_path / "imgs")], val={"folders": [str(_images(tmp_path / "val", n=2))]}),
                quiet=True)
    w = export(run, tmp_path / "w.safetensors")
    model, before = load_weights(w)
    other = _images(tmp_path / "other", n=1, size=(48, 48))
    assert main(["validate", str(w), "--on", str(other)]) == 0
    assert load_weights(w)[1].validation == before.validation  # only --write records
    assert main(["validate", str(w), "--on", str(other), "--write"]) == 0
    again, info = load_weights(w)
    v = info.validation
    assert info.validated_on()["folders"] == [str(other)]
    assert v["psnr"] == v["other"]["psnr"] != before.validation["psnr"]
    assert v["at_training"] == before.validation and v["step"] == before.validation["step"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "nope.safetensors"), "--on", str(other)]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_logs_go_to_tensorboard_when_it_is_installed(tmp_path, monkeypatch):
    import sys
    import types

    scalars = []

    class Writer:  # stands in for torch.utils.tensorboard.SummaryWriter
        def __init__(self, logdir):
            self.logdir = logdir

        def add_scalar(self, key, value, step):
            scalars.append((key, value, step))

        def flush(self):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    data = _images(tmp_path / "imgs")
    val = _images(tmp_path / "val", n=1)
    train(_cfg(tmp_path, [data], val={"folders": [str(val)], "every": 4}), quiet=True)
    keys = {k for k, _, _ in scalars}
    assert {"train/loss", "train/lr", "train/pixel", "val/psnr"} <= keys
    assert [s for k, _, s in scalars if k == "train/loss"] == [1, 2, 3, 4]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # not installed: JSONL only
    train(_cfg(tmp_path, [data], run={"name": "u"}), quiet=True)
    assert (tmp_path / "runs" / "u" / "log.jsonl").read_text().count("\n") == 4


def test_gan_fine_tuning_image_and_video(tmp_path):
    data = _images(tmp_path / "imgs", size=(96, 96))
    base = train(_cfg(tmp_path, [data], run={"name": "base"}), quiet=True)
    gan = _cfg(tmp_path, [data], model={"init": str(base)}, run={"name": "gan"},
               loss={"adversarial_weight": 0.01, "feature_match_weight": 0.1})
    ck = load_checkpoint(train(gan, quiet=True) / "checkpoint.pt")
    assert ck["disc"] is not None and "adversarial" in ck["history"][-1]
    video = _cfg(tmp_path, [data], run={"name": "vgan"}, data={"frames": 5},
                 model={"arch": "mfsr", "params": {"features": 8, "blocks": 1, "flow_features": 8}},
                 loss={"adversarial_weight": 0.01, "temporal_weight": 0.5, "flow_weight": 0.1})
    ck = load_checkpoint(train(video, quiet=True) / "checkpoint.pt")
    first_conv = next(v for k, v in ck["disc"].items() if k.endswith("weight.original") or k.endswith("weight"))
    assert first_conv.shape[1] == 9  # the discriminator sees three consecutive frames
    assert "temporal" in ck["history"][-1]


def test_errors_are_clear(tmp_path):
    data = _images(tmp_path / "imgs")
    run = train(_cfg(tmp_path, [data]), quiet=True)
    good = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(good[:100])
    with pytest.raises(TrainError, match="corrupt checkpoint"):
        train(None, str(run), quiet=True)
    (run / "checkpoint.pt").write_bytes(good)
    from train import loop

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    saved = torch.save
    torch.save = full_disk
    try:
        with pytest.raises(TrainError, match="No space left"):
            train(_cfg(tmp_path, [data], optim={"steps": 6}), str(run), quiet=True)
    finally:
        torch.save = saved
    assert (run / "checkpoint.pt").read_bytes() == good  # the last good checkpoint survives
    assert not [p for p in run.iterdir() if "tmp" in p.name]
    del loop


def test_cli_one_line_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "train", str(tmp_path / "nope.toml")], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [f"error: cannot read config {tmp_path / 'nope.toml'}: No such file or directory"]


def test_pseudo_video_motion_blur_smears_along_the_pan_only(tmp_path):
    """With an open shutter (``exposure``) each frame is smeared along the camera's pan, not across it;
    ``data.motion_blur`` makes a share of the pseudo-video clips so."""
    from train.pseudo import camera_motion
    from vsr.flow import Dis, dis_flow, luma8

    img = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)  # detail in every direction
    for seed in range(50):  # a camera fast enough to blur
        frames = camera_motion(img, 3, 96, np.random.default_rng(seed), max_shift=12)
        pan = np.median(dis_flow(luma8(frames[1]), luma8(frames[2]), Dis(finest_scale=0))[16:-16, 16:-16].reshape(-1, 2), axis=0)
        if np.hypot(*pan) > 8:
            break
    blurred = camera_motion(img, 3, 96, np.random.default_rng(seed), max_shift=12, exposure=1.0)
    assert blurred.dtype == np.uint8 and blurred.shape == frames.shape
    along = pan / np.hypot(*pan)
    across = np.array([-along[1], along[0]])

    def correlation(video, d):  # of pixels two steps apart in direction d: a smear along d correlates them
        g = video[1, 20:-20, 20:-20].astype(np.float32)
        moved = np.roll(g, shift=(int(round(2 * d[1])), int(round(2 * d[0]))), axis=(0, 1))
        return np.corrcoef(g[4:-4, 4:-4].ravel(), moved[4:-4, 4:-4].ravel())[0, 1]

    assert max(correlation(frames, along), correlation(frames, across)) < 0.3
    assert correlation(blurred, along) > 0.5 and correlation(blurred, across) < 0.3

    # through TrainData: the 1-frame twin's still crops get the same shutter in the same share of windows
    (tmp_path / "noise").mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(
            tmp_path / "noise" / f"{i}.png")
    stills, _ = load_sources([str(tmp_path / "noise")], 2, tmp_path / "cache")

    def grad(hr):
        return (hr.diff(dim=-1).square().mean() + hr.diff(dim=-2).square().mean()).item()

    for window in (1, 3):
        plain = TrainData(stills, [], scale=2, patch=24, frames=window, motion_blur=0.0)
        shaken = TrainData(stills, [], scale=2, patch=24, frames=window, motion_blur=1.0)
        rng = np.random.default_rng(0)
        sharp, smeared = plain.batch(rng, 16)[1], shaken.batch(rng, 16)[1]
        assert grad(smeared) < 0.7 * grad(sharp), window


def test_init_gives_a_window_model_a_state_that_starts_ignored(tmp_path):
    """A recurrent model initialised from its window-only twin: same outputs whatever the state, until trained."""
    from train.checkpoint import init_from
    from vsr.models import build

    torch.manual_seed(0)
    window = build("window", scale=2, window=3, state=False, features=8, blocks=1).eval()
    torch.save({"model": window.state_dict()}, tmp_path / "best.pt")
    recurrent = build("window", scale=2, window=3, state=True, feedback=True, features=8, blocks=1).eval()
    assert init_from(recurrent, str(tmp_path)) == len(window.state_dict())
    x, flows = torch.rand(1, 9, 12, 16), torch.randn(1, 4, 12, 16)
    with torch.no_grad():
        expected = window(x, flows)
        for state in (torch.zeros(1, recurrent.state_channels, 12, 16), torch.rand(1, recurrent.state_channels, 12, 16)):
            out, _ = recurrent(x, flows, state)
            torch.testing.assert_close(out, expected)


def test_init_gives_a_single_image_model_neighbours_that_start_ignored(tmp_path):
    """A window model initialised from the single-image model of its size starts at that model's outputs, whatever
    the neighbours and flows: the source's head kernel lands on the centre frame's inputs, not on t-1's."""
    from train.checkpoint import init_from
    from vsr.models import build

    torch.manual_seed(0)
    single = build("window", scale=2, window=1, state=False, features=8, blocks=1).eval()
    torch.save({"model": single.state_dict()}, tmp_path / "best.pt")
    window = build("window", scale=2, window=3, state=False, features=8, blocks=1).eval()
    assert init_from(window, str(tmp_path)) == len(single.state_dict())
    x = torch.rand(1, 9, 12, 16)
    with torch.no_grad():
        expected = single(x[:, 3:6])
        cases = ((x[:, :3], torch.zeros(1, 4, 12, 16)), (torch.rand(1, 3, 12, 16), torch.randn(1, 4, 12, 16)))
        for neighbours, flows in cases:
            window_x = torch.cat([neighbours, x[:, 3:6], neighbours.flip(-1)], 1)
            torch.testing.assert_close(window(window_x, flows), expected)


def test_init_can_start_new_inputs_from_a_small_random_kernel(tmp_path):
    """model.init_new: the widened head keeps the source's kernel on the centre frame's inputs, and the new inputs
    get that share of the model's own random initialisation (not zeros), so they affect the output from step 0."""
    from train.checkpoint import init_from
    from vsr.models import build

    torch.manual_seed(0)
    single = build("window", scale=2, window=1, state=False, features=8, blocks=1).eval()
    torch.save({"model": single.state_dict()}, tmp_path / "best.pt")
    kernels = {}
    for share in (0.0, 0.25, 1.0):
        torch.manual_seed(1)
        window = build("window", scale=2, window=3, state=False, features=8, blocks=1).eval()
        fresh = window.head[0].weight.detach().clone()
        init_from(window, str(tmp_path), new_inputs=share)
        w = window.head[0].weight.detach()
        torch.testing.assert_close(w[:, 3:6], single.head[0].weight)
        new = torch.cat([w[:, :3], w[:, 6:]], 1)
        torch.testing.assert_close(new, share * torch.cat([fresh[:, :3], fresh[:, 6:]], 1))
        kernels[share] = new
    assert kernels[0.0].abs().max() == 0 and kernels[0.25].abs().mean() > 0
    x = torch.rand(1, 9, 12, 16)
    with torch.no_grad():
        window_x = torch.cat([torch.rand(1, 3, 12, 16), x[:, 3:6], torch.rand(1, 3, 12, 16)], 1)
        assert not torch.allclose(window(window_x, torch.randn(1, 4, 12, 16)), single(x[:, 3:6]))


@pytest.mark.parametrize("scale", [2, 4])
def test_grid_loss_sees_a_pattern_at_the_upsamplers_period_not_noise(scale):
    from train.losses import grid_loss

    truth = torch.rand(2, 3, 32 * scale, 32 * scale)
    assert grid_loss(truth, truth, scale) == 0
    stripes = torch.zeros(scale, 1)
    stripes[0] = 0.05  # every scale-th row 0.05 brighter: the stripes a GAN draws
    pattern = stripes.repeat(32, 32 * scale)
    noise = torch.randn_like(truth) * pattern.std()  # the same energy without a period
    striped, noisy = grid_loss(truth + pattern, truth, scale), grid_loss(truth + noise, truth, scale)
    assert striped > 0.01 and striped > 4 * noisy
    ramp = torch.linspace(0, 0.2, 32 * scale).repeat(32 * scale, 1)  # smooth change: no period
    assert grid_loss(truth + ramp, truth, scale) < striped / 4
