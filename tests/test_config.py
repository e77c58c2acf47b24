"""Configuration: defaults, environment, flags, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime.config import EngineConfig, ServerConfig, load_config
from realtime.errors import ConfigError


def test_defaults() -> None:
    cfg = load_config({}, env={})
    assert (cfg.host, cfg.port, cfg.engine.device, cfg.api_keys) == ("127.0.0.1", 8000, "auto", ())


def test_environment_then_flags() -> None:
    env = {"REALTIME_PORT": "9001", "REALTIME_API_KEYS": "a, b", "REALTIME_THREADS": "2",
           "REALTIME_CUDA_GRAPHS": "false", "REALTIME_CACHE_DIR": "/tmp/x",
           "REALTIME_HOST": "0.0.0.0"}
    cfg = load_config({"host": None}, env=env)
    assert cfg.port == 9001 and cfg.api_keys == ("a", "b") and cfg.host == "0.0.0.0"
    assert cfg.engine.threads == 2 and cfg.engine.cuda_graphs is False
    assert cfg.cache_dir == Path("/tmp/x")
    assert load_config({"port": 7000}, env=env).port == 7000  # a flag beats the environment


@pytest.mark.parametrize(("env", "needle"), [
    ({"REALTIME_PORT": "eighty"}, "REALTIME_PORT"),
    ({"REALTIME_PORT": "70000"}, "port"),
    ({"REALTIME_WARM_UP": "maybe"}, "REALTIME_WARM_UP"),
    ({"REALTIME_DTYPE": "int8"}, "dtype"),
    ({"REALTIME_THREADS": "two"}, "REALTIME_THREADS"),
    ({"REALTIME_MAX_BATCH": "0"}, "max_batch must be at least 1"),
    ({"REALTIME_WINDOW_FIRST_S": "0.01"}, "window sizes must be"),
    ({"REALTIME_OPENAI_VOICES": "alloy=af_bella,nova"}, "entry 'nova' is not name=voice"),
    ({"REALTIME_OPENAI_VOICES": "alloy=af_bella(0)"}, "entry 'alloy=af_bella.0.': voice weight"),
])
def test_bad_values(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config({}, env=env)


def test_openai_voices_from_the_environment() -> None:
    assert load_config({}, env={}).openai_voices == ()
    cfg = load_config({}, env={"REALTIME_OPENAI_VOICES": "alloy=af_bella, nova=af_sky"})
    assert cfg.openai_voices == ("alloy=af_bella", "nova=af_sky")
    with pytest.raises(ConfigError, match="REALTIME_OPENAI_VOICES"):
        ServerConfig(openai_voices="alloy=af_bella")  # type: ignore[arg-type]


def test_serve_flags_reach_the_config() -> None:
    from realtime.cli import serve_config

    cfg = serve_config(["--port", "9100", "--api-key", "a", "--api-key", "b", "--windows", "on",
                        "--no-web-client", "--eager"],
                       env={"REALTIME_PORT": "1", "REALTIME_MAX_SESSIONS": "7",
                            "REALTIME_MAX_CONTEXTS": "3", "REALTIME_WARM_UP": "0",
                            "REALTIME_RATE_MESSAGES_PER_S": "5.5", "REALTIME_MAX_BATCH": "2"})
    assert (cfg.port, cfg.max_contexts, cfg.api_keys) == (9100, 3, ("a", "b"))
    assert cfg.engine.warm_up is False and cfg.engine.max_batch == 2
    assert cfg.rate_messages_per_s == 5.5 and cfg.max_sessions == 7  # env where no flag
    assert cfg.engine.windows == "on" and cfg.web_client is False and cfg.engine.eager
    assert serve_config([], env={}).engine.window_adaptive is True
    assert serve_config([], env={"REALTIME_WINDOW_ADAPTIVE": "0"}).engine.window_adaptive is False
    for removed in ("--window-growth", "--compile-decoder", "--fused-norms", "--graph-rows"):
        with pytest.raises(SystemExit):
            serve_config([removed, "2"], env={})


def test_cpu_fused_norms_flag_env_and_engine() -> None:
    """On by default (the suite's environment turns it off: tests/conftest); the environment
    sets it, --eager turns it off in the plan, and start_engine hands it to the runner."""
    from realtime.cli import serve_config
    from realtime.engine.plan import plan_engine
    from realtime.engine.runner.local import start_engine
    from realtime.engine.runner.runner import cpu_compile_missing
    from realtime.model.decoder import AdaINResBlock1
    from tests.conftest import tiny_loaded

    assert EngineConfig().cpu_fused_norms
    assert serve_config([], env={}).engine.cpu_fused_norms
    assert not serve_config([], env={"REALTIME_CPU_FUSED_NORMS": "0"}).engine.cpu_fused_norms
    assert plan_engine(EngineConfig(), "cpu").kernels.cpu_fused_norms
    assert not plan_engine(EngineConfig(eager=True), "cpu").kernels.cpu_fused_norms
    assert not plan_engine(EngineConfig(), "cuda:0").kernels.cpu_fused_norms
    if cpu_compile_missing() is not None:
        return
    lm = tiny_loaded()
    engine = start_engine(lm, EngineConfig(device="cpu", warm_up=False, cpu_fused_norms=True))
    try:
        assert engine.runner.cpu_fused_norms  # type: ignore[attr-defined]
        assert all(b.fused_rows is not None for b in lm.model.modules()
                   if isinstance(b, AdaINResBlock1))
    finally:
        engine.stop()
        lm.model.fuse_row_norms(None)


def test_the_engine_gets_the_window_plan_asked_for() -> None:
    from realtime.engine.runner.local import start_engine
    from tests.conftest import tiny_loaded

    for adaptive in (True, False):
        engine = start_engine(tiny_loaded(), EngineConfig(device="cpu", warm_up=False,
                                                          window_adaptive=adaptive,
                                                          cpu_fused_norms=False))
        try:
            plan = engine.runner.windows  # type: ignore[attr-defined]
            assert plan is not None and plan.adaptive is adaptive
        finally:
            engine.stop()


def test_serve_help_is_short_and_every_setting_is_documented() -> None:
    """``realtime serve --help`` shows the essential flags (at most 24 options); every
    setting, those too, is an environment variable listed in docs/configuration.md."""
    from realtime.cli import _build_parser
    from realtime.config import settings

    serve = next(a for a in _build_parser()._actions if a.dest == "command")
    options = [a for a in serve.choices["serve"]._actions  # type: ignore[union-attr]
               if a.option_strings]
    assert len(options) <= 24, [a.option_strings for a in options]
    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    for name, _, _ in settings():
        assert f"`{name}`" in doc, name


def test_the_catalog_names_every_registered_model(capsys: pytest.CaptureFixture[str]) -> None:
    """The torch-free catalog (what the CLI and the supervisor check names against) and the
    registry (what loads them) hold the same models, described alike."""
    from realtime.catalog import DEFAULT_MODEL, MODEL_DESCRIPTIONS
    from realtime.cli import main
    from realtime.weights.registry import MODELS

    assert list(MODELS) == list(MODEL_DESCRIPTIONS) and DEFAULT_MODEL in MODELS
    assert all(spec.name == name and spec.description == MODEL_DESCRIPTIONS[name]
               for name, spec in MODELS.items())
    assert main(["models"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == list(MODELS)
    with pytest.raises(SystemExit):
        main(["serve", "--model", "nonexistent"])
    assert "invalid choice: 'nonexistent'" in capsys.readouterr().err
