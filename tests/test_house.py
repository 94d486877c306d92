"""The shape of the house: imports run one way, no import cycles in core, short functions, and
one spec per kind of extension (model kind, corruption, page) that everything reads."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from core.app import catalog, site
from core.data.corrupt import CORRUPTIONS, corrupt
from core.models.config import KINDS, NETWORKS, ConfigError, ModelConfig, get_kind
from core.models.losses import check_objective
from core.models.protocol import LatentModel
from tests.conftest import ROOT, tiny_dataset

MAX_FUNCTION_LINES = 60


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (``from core import x``
    counts as ``core.x`` when x is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


CORE = ROOT / "core"
FLOORS = sorted(p.name for p in CORE.iterdir() if (p / "__init__.py").is_file())


def _core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def _module_of(path: Path) -> str:
    """core/lenses/latent.py -> "core.lenses.latent"; core/data/__init__.py -> "core.data"."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _floor(module: str) -> str | None:
    """The subpackage a core module lives in: "core.lenses.latent" -> "lenses"; None for core's
    own files (``core``, ``core.cli``, ``core.__main__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOORS else None


def _may_import(floor: str) -> tuple[str, ...]:
    """A floor's ``MAY_IMPORT``, read from its ``__init__.py`` without importing it."""
    for node in ast.parse((CORE / floor / "__init__.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if getattr(target, "id", None) == "MAY_IMPORT":
                return ast.literal_eval(node.value)
    raise AssertionError(f"core/{floor}/__init__.py declares no MAY_IMPORT")


def test_core_is_in_floors_each_with_its_rules():
    loose = sorted(p.name for p in CORE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "cli.py"], "every engine module lives on a floor"
    assert FLOORS == ["app", "data", "experiments", "formats", "lenses", "models", "training"]
    for floor in FLOORS:
        init = CORE / floor / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "May import" in doc, f"core/{floor}/__init__.py says what it holds and may import"
        assert set(_may_import(floor)) <= set(FLOORS) - {floor}


def _upward_imports(path: Path, module: str) -> list[str]:
    """The imports of ``path`` (core module ``module``) that its floor's rule does not allow."""
    here = _floor(module)
    if here is None:
        return []
    allowed = {here, *_may_import(here)}
    return [
        f"{module} imports {m}"
        for m in sorted(_imports(path))
        if m == "core.cli" or (m.startswith("core.") and (_floor(m) or here) not in allowed)
    ]


def test_a_floor_imports_only_the_floors_it_names():
    assert [v for path in _core_files() for v in _upward_imports(path, _module_of(path))] == []


def test_the_floor_rules_have_no_circle():
    def reaches(start: str, goal: str, seen: frozenset[str]) -> bool:
        return any(n == goal or reaches(n, goal, seen | {n}) for n in set(_may_import(start)) - seen)

    assert [f for f in FLOORS if reaches(f, f, frozenset())] == []


def test_a_floor_rule_catches_an_upward_import(tmp_path):
    """The rule is not vacuous: a lens that loads a checkpoint itself, or calls the CLI, breaks it."""
    fake = tmp_path / "lens.py"
    fake.write_text("from core.formats.checkpoints import load_checkpoint\nfrom core.models import losses\n")
    assert _upward_imports(fake, "core.lenses.fake") == [
        "core.lenses.fake imports core.formats.checkpoints",
        "core.lenses.fake imports core.formats.checkpoints.load_checkpoint",
    ]
    fake.write_text("from core import cli\n")
    assert _upward_imports(fake, "core.app.fake") == ["core.app.fake imports core.cli"]


def test_imports_run_one_way():
    for path in _core_files():
        tops = {_top(m) for m in _imports(path)}
        assert not tops & {"streamlit", "pages", "app", "benchmarks", "tests"}, f"{path} imports {tops}"
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        assert "pages" not in {_top(m) for m in _imports(path)}, f"benchmarks/{path.name} imports pages"
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        assert "benchmarks" not in {_top(m) for m in _imports(path)}, f"{path.name} imports benchmarks"


def test_no_import_cycles_in_core():
    modules = {_module_of(p): p for p in _core_files() if p.name != "__main__.py"}
    graph = {name: {m for m in _imports(path) if m in modules} - {name} for name, path in modules.items()}

    def reaches(start: str, goal: str, seen: frozenset[str]) -> bool:
        return any(nxt == goal or reaches(nxt, goal, seen | {nxt}) for nxt in graph[start] - seen)

    cycles = sorted(n for n in modules if reaches(n, n, frozenset()))
    assert cycles == [], f"modules of core/ on an import cycle: {cycles}"


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in [*_core_files(), *sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.name} ({lines} lines)")
    assert long == []


# ---------------------------------------------------------------- model kinds


def test_every_model_kind_builds_and_trains_its_network():
    data = tiny_dataset(16, classes=3)
    for kind in KINDS.values():
        cfg = kind.model_config(data.image_shape, data.num_classes, arch="mlp", latent_dim=2, hidden=(8,))
        assert cfg.kind in NETWORKS and cfg.is_variational == kind.variational
        assert cfg.conditional == kind.conditional and (cfg.num_classes == 3) == kind.conditional
        cfg.check_data(data)
        from core.training.train import TrainConfig

        TrainConfig(**kind.train_overrides).validate()  # the overrides are valid training settings


def test_a_conditional_kind_refuses_a_data_set_without_labels():
    with pytest.raises(ConfigError, match="needs class labels"):
        get_kind("cvae").model_config((1, 28, 28), 0)
    with pytest.raises(ConfigError, match="unknown model kind 'gan'"):
        get_kind("gan")


def test_data_that_do_not_fit_a_model_are_refused_in_one_place():
    cfg = ModelConfig(kind="cvae", arch="mlp", num_classes=10)
    with pytest.raises(ConfigError, match="images are"):
        cfg.check_data(tiny_dataset(8, shape=(1, 28, 20)))
    unlabelled = tiny_dataset(8)
    unlabelled.train_y = None
    with pytest.raises(ConfigError, match="needs class labels"):
        cfg.check_data(unlabelled)


def test_beta_zero_sorts_as_zero_not_one():
    entry = catalog.ModelEntry(key="k", name="k", source="user", path=Path("k"), meta={"train": {"beta": 0.0}})
    assert catalog.beta_of(entry) == 0.0
    assert catalog.beta_of(catalog.ModelEntry(key="j", name="j", source="user", path=Path("j"))) == 1.0


def test_objective_checks_are_written_once():
    check_objective(0.5, "convex")
    for beta, form, match in ((-1, "standard", "β must be"), (2, "convex", "needs 0 ≤ β ≤ 1"), (1, "odd", "loss form")):
        with pytest.raises(ValueError, match=match):
            check_objective(beta, form)


# ---------------------------------------------------------------- corruptions


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_every_corruption_spec_is_coherent_and_works(name):
    spec = CORRUPTIONS[name]
    assert 0 < spec.low <= spec.default <= spec.high <= spec.limit
    assert all(0 < level <= spec.limit for level in spec.chart_levels)
    assert spec.title and spec.button and spec.meaning
    x = torch.full((4, 1, 28, 28), 0.5)
    gen = torch.Generator().manual_seed(0)
    out = corrupt(x, name, spec.default, gen)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x), "the default level changes the image"
    again = corrupt(x, name, spec.default, torch.Generator().manual_seed(0))
    assert torch.equal(out, again), "a seed gives the same corruption"
    with pytest.raises(ValueError, match=f"must be in \\[0, {spec.limit:g}\\]"):
        corrupt(x, name, spec.limit + 0.5)


# ---------------------------------------------------------------- the page table


def test_the_page_table_lists_every_page_file_once():
    table = site.page_table()
    files = sorted(p.name for p in (ROOT / "pages").glob("*.py") if not p.name.startswith("_"))
    assert sorted(Path(s.file).name for s in table) == files
    assert [s.is_home for s in table].count(True) == 1 and table[0].is_home
    assert len({s.url_path for s in table}) == len(table)
    assert {s.url_path: s.params for s in table}["sliders"] == ("start", "seed", "item", "z", "y", "decoder")


def test_a_page_declaration_with_a_mistake_names_its_file(tmp_path):
    (tmp_path / "home.py").write_text(
        'PAGE = {"title": "H", "icon": "x", "url_path": "h", "section": "Latent Lab", "order": 0, '
        '"params": (), "tagline": "", "blurb": ""}\n'
    )
    (tmp_path / "new_demo.py").write_text('PAGE = {"title": "New"}\n')
    with pytest.raises(site.PageTableError, match="new_demo.py: PAGE misses"):
        site.page_table(tmp_path)
    (tmp_path / "new_demo.py").write_text("import streamlit as st\n")
    with pytest.raises(site.PageTableError, match="new_demo.py: no PAGE"):
        site.read_spec(tmp_path / "new_demo.py")


def test_a_page_declares_the_inputs_it_serves_and_the_others_get_one_line_why(tmp_path):
    def page(name: str, title: str, section: str, order: int, extra: str = "") -> None:
        (tmp_path / f"{name}.py").write_text(
            f'PAGE = {{"title": "{title}", "url_path": "{name}", "section": "{section}", "order": {order}, '
            f'"icon": "x", "params": (), "tagline": "", "blurb": ""{extra}}}\n'
        )

    page("home", "H", "Latent Lab", 0)
    page("pics", "Pics", "Explore", 1)
    page("map", "Map", "Explore", 2, ', "inputs": ("images", "table")')
    specs = {s.url_path: s for s in site.page_table(tmp_path)}
    assert specs["pics"].inputs == ("images",) and specs["map"].inputs == ("images", "table")  # images by default
    assert site.off_reason(specs["map"], "table", "A table VAE", tmp_path) is None
    why = site.off_reason(specs["pics"], "table", "A table VAE", tmp_path)
    assert why == (
        "Pics shows models of images; A table VAE models the rows of a table. Open Map, or pick another model in "
        "the sidebar."
    )
    page("bad", "B", "Explore", 3, ', "inputs": ("audio",)')
    site.page_table.cache_clear()
    with pytest.raises(site.PageTableError, match="bad.py: inputs must be some of"):
        site.page_table(tmp_path)


# ---------------------------------------------------------------- the model protocol and what pages used to compute


def test_the_shipped_family_implements_the_model_protocol():
    from core.models.networks import build_model

    for kind in ("vae", "ae", "cvae"):
        model = build_model(ModelConfig(kind=kind, arch="mlp", latent_dim=3, num_classes=10 if kind == "cvae" else 0))
        assert isinstance(model, LatentModel)
        y = torch.tensor([1, 2]) if model.conditional else None
        x = torch.rand(2, *model.image_shape)
        mu, logvar = model.encode(x, y)
        assert mu.shape == (2, 3) and (logvar is not None) == model.is_variational
        assert model.decode(mu, y).shape == x.shape and model.recon_nll(x, mu, y).shape == (2,)


def test_code_ranges_follow_the_prior_for_a_vae_and_the_codes_for_an_ae():
    from core.lenses.latent import code_range

    vae = code_range(3, variational=True)
    assert np.all(vae.lo == -4) and np.all(vae.hi == 4) and np.all(vae.centre == 0)
    mu = np.random.default_rng(0).normal(5.0, 2.0, size=(500, 3)).astype(np.float32)
    ae = code_range(3, variational=False, mu=mu)
    assert np.allclose(ae.centre, 5.0, atol=0.3) and np.allclose(ae.spread, 2.0, atol=0.3)
    assert np.all(ae.lo < ae.centre - 7) and np.all(ae.hi > ae.centre + 7)
    assert np.all(code_range(3, variational=False).spread == 2.5)  # no data: a guess


def test_a_test_row_in_a_link_becomes_its_class_and_index():
    data = tiny_dataset(40, classes=3)
    row = 7
    pick, problem = catalog.parse_test_row(str(row), data, "test image A")
    assert problem is None and pick.row == row and pick.cls == int(data.test_y[row])
    assert catalog.class_members(data, pick.cls)[pick.index] == row
    assert catalog.parse_test_row("999", data, "test image A") == (None, "test image A 999 is outside 0..19")


def test_the_denoising_split_is_disjoint_and_small_splits_share_out():
    from core.lenses.denoise import split_rows

    batch, val = split_rows(10_000, seed=3)
    assert len(batch) == 64 and len(val) == 32 and not set(batch) & set(val)
    batch, val = split_rows(40, seed=0)  # Olivetti holds out 40 faces
    assert len(val) == 13 and len(batch) == 27 and not set(batch) & set(val)
