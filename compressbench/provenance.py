"""Where a model came from, and the one route from a name or a file to a module.

A :class:`Provenance` is a **base** (a registered model with its configuration, or a student family
at some width: anything :data:`compressbench.models.BASE_BUILDERS` can build) plus the **stages**
applied to it (compression methods with their options and the structure they produced, and
training stages such as ``distill`` or ``recover`` that change weights, not shapes). It is all that
is needed to rebuild the module's skeleton; the weights come from a state dict.

Everything that saves, reloads, describes or rebuilds a model goes through this module:

- :func:`load_variant`: a registered name or a saved file -> module, provenance and label in one trip
  (:func:`load_model`: the module alone; FOMM checkpoints and configs too);
- :func:`provenance_of`: what a name or a file, and the module loaded from it, came from;
- :func:`derive`: apply a method chain to a module, returning one :class:`Variant` per stage;
- :func:`save_model` / :func:`read_model_file`: the saved-file format (below).

A saved model is ``torch.save`` of a plain dict: ``format``, ``architecture="chain"``,
``builder_args={"base": ..., "stages": [...]}``, ``metadata`` and ``state_dict``. Loading reads it
with ``torch.load(weights_only=True)``, which accepts only tensors and plain containers, builds the
base with a registered builder, replays each stage's registered ``rebuild`` (shapes only), and loads
the state dict strictly. A file chooses numbers and shapes among what compressbench knows how to
build, never code. Files of earlier versions (``architecture`` ``student`` or ``registered-model``)
load as a base without stages.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compressbench.compression import METHODS, CompressionContext, apply_chain, parse_chain, replay
from compressbench.errors import CompressbenchError
from compressbench.files import (
    check_writable,
    current_umask,
    input_file_problem,
    render_json,
    temp_prefix,
    write_atomic,
)
from compressbench.models import BASE_BUILDERS, MODELS, base_of_module, build_model_with_weights, has_default_weights
from compressbench.models.checkpoint import FOMM_KEY, extract_state_dict, load_state_dict_strict, read_checkpoint
from compressbench.models.detector import DetectorConfig
from compressbench.models.fomm_config import read_fomm_config
from compressbench.runtimes.deployed import DeployedModel, is_deployed

FORMAT = "compressbench-model/1"
CHAIN = "chain"
SIDECAR_FORMAT = "compressbench-variant/2"  # 2: base and stages in the provenance shape
# Stages that train weights and change no shape: replaying them is the identity.
TRAINING_STAGES = frozenset({"distill"})
WEIGHTS_CHOICES = ("default", "random")


@dataclass(frozen=True)
class Base:
    """What a chain starts from: ``kind`` names a registered base builder, ``args`` its JSON-like
    arguments. ``kind == ""`` is a module of unknown origin (e.g. a user's own detector): it can be
    compressed and measured, but not saved, since nothing could rebuild it."""

    kind: str = ""
    args: dict = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return bool(self.kind)

    def build(self) -> nn.Module:
        """The base's skeleton (random weights), in eval mode."""
        if not self.known:
            raise CompressbenchError("this model's origin is unknown, so it cannot be rebuilt (save it from a registered model)")
        builder = BASE_BUILDERS.get(self.kind)
        try:
            return builder(dict(self.args)).eval()
        except (TypeError, ValueError, KeyError) as exc:
            raise CompressbenchError(f"cannot rebuild base {self.kind!r} from {self.args}: {exc}") from None

    def to_json(self) -> dict:
        return {"architecture": self.kind, "builder_args": self.args} if self.known else {}

    @classmethod
    def from_json(cls, data: dict | None) -> Base:
        """Reads this format and the earlier ``{"model", "config"}`` shape of registered bases."""
        data = data or {}
        if not isinstance(data, dict):
            raise CompressbenchError(f"a saved base must be a table, got {type(data).__name__}")
        if data.get("architecture"):
            return cls(str(data["architecture"]), dict(data.get("builder_args") or {}))
        if data.get("model"):
            return cls("registered-model", {"model": data["model"], "config": data.get("config")})
        return cls()


@dataclass(frozen=True)
class Stage:
    """One stage applied to a model: a compression method (``structure`` lets its ``rebuild`` recreate
    the shapes) or a training stage (identity on shapes). ``report`` is what the stage measured."""

    method: str
    options: dict = field(default_factory=dict)
    structure: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    int8: bool | None = None  # None for stages saved by earlier versions: inferred from the method

    @property
    def computes_in_int8(self) -> bool:
        if self.int8 is not None:
            return self.int8
        if self.method in METHODS:
            return METHODS.get(self.method).int8 and not (self.options or {}).get("weights_only", False)
        return False

    @property
    def changes_shapes(self) -> bool:
        return self.method not in TRAINING_STAGES

    def to_json(self, with_report: bool = True) -> dict:
        out = {"method": self.method, "options": self.options, "structure": self.structure, "int8": self.computes_in_int8}
        if with_report:
            out["report"] = self.report
        return out

    @classmethod
    def from_json(cls, data: dict) -> Stage:
        if not isinstance(data, dict) or not isinstance(data.get("method"), str):
            raise CompressbenchError(f"a saved stage must be a table with a method name, got {data!r:.80}")
        return cls(
            data["method"],
            dict(data.get("options") or {}),
            dict(data.get("structure") or {}),
            dict(data.get("report") or {}),
            data.get("int8"),
        )


@dataclass(frozen=True)
class Provenance:
    """A base and the stages applied to it, in order."""

    base: Base = Base()
    stages: tuple[Stage, ...] = ()

    @property
    def rebuildable(self) -> bool:
        return self.base.known

    @property
    def int8(self) -> bool:
        return any(stage.computes_in_int8 for stage in self.stages)

    @property
    def method(self) -> str:
        """The chain as one string, e.g. ``exact,prune,quantize`` (``none`` for the base alone)."""
        return ",".join(stage.method for stage in self.stages) or "none"

    def then(self, *stages: Stage) -> Provenance:
        return Provenance(self.base, self.stages + tuple(stages))

    def prefix(self, count: int) -> Provenance:
        return Provenance(self.base, self.stages[:count])

    def float_prefix(self) -> Provenance:
        """The stages before the first that computes in int8: the float model an int8 one came from."""
        for index, stage in enumerate(self.stages):
            if stage.computes_in_int8:
                return self.prefix(index)
        return self

    def build(self) -> nn.Module:
        """The module's skeleton: the base rebuilt, then every stage's ``rebuild`` replayed."""
        module = self.base.build()
        shaped = [s.to_json(with_report=False) for s in self.stages if s.changes_shapes]
        return replay(module, shaped).eval()

    def to_json(self, with_reports: bool = True) -> dict:
        return {"base": self.base.to_json(), "stages": [s.to_json(with_reports) for s in self.stages]}

    @classmethod
    def from_json(cls, data: dict) -> Provenance:
        stages = data.get("stages") or []
        if not isinstance(stages, list):
            raise CompressbenchError("a saved chain's stages must be a list")
        return cls(Base.from_json(data.get("base")), tuple(Stage.from_json(s) for s in stages))


@dataclass
class Variant:
    """A module with a name and its provenance (the base model, or a stage of a chain on it)."""

    name: str
    module: nn.Module
    provenance: Provenance = Provenance()

    @property
    def stages(self) -> tuple[Stage, ...]:
        return self.provenance.stages

    @property
    def int8(self) -> bool:
        return self.provenance.int8

    @property
    def method(self) -> str:
        return self.provenance.method


# -- where a model came from ------------------------------------------------------------------------


def provenance_of(source: str | Path | nn.Module, module: nn.Module | None = None) -> Provenance:
    """The provenance of a registered name, a saved model file, or a module of unknown origin.

    For a registered name, ``module`` (the model loaded from it) supplies the configuration in force
    (e.g. from a FOMM YAML file)."""
    if isinstance(source, nn.Module):
        return Provenance(_base_matching(source))
    name = str(source)
    if name not in MODELS and is_deployed(name):
        return Provenance()  # the module is the file: nothing rebuilds or compresses it further
    if name in MODELS:
        return _registered(name, module)
    if _is_file(name):
        payload = read_checkpoint(name)
        if is_model_file(payload):
            return _provenance_in(payload, name)
    return Provenance(_base_matching(module) if module is not None else Base())


def _registered(name: str, module: nn.Module | None) -> Provenance:
    """A registered model's provenance, with the configuration in force in ``module``."""
    config = getattr(module, "config", None)
    return Provenance(Base("registered-model", {"model": name, "config": config.to_dict() if config is not None else None}))


def _base_matching(module: nn.Module) -> Base:
    """The base that rebuilds ``module`` exactly (every state-dict shape equal), else unknown: a
    teacher already pruned in memory is teacher-shaped, but no base alone rebuilds it."""
    base = Base(*base_of_module(module))
    if not base.known:
        return base
    expected = {k: tuple(v.shape) for k, v in base.build().state_dict().items()}
    actual = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    return base if expected == actual else Base()


def _is_file(name: str) -> bool:
    try:
        return Path(name).is_file()
    except OSError:  # e.g. a name longer than the file system allows: not a file
        return False


MODEL_FILE_SUFFIXES = (".pt", ".pth", ".tar", ".bin", ".ckpt")


def _names_a_file(name: str) -> bool:
    """A model name that can only mean a file: it has a folder part or a model file's suffix
    (registered names have neither), so "unknown model" would be the wrong thing to say."""
    return os.sep in name or "/" in name or Path(name).suffix.lower() in MODEL_FILE_SUFFIXES


def is_model_file(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def _provenance_in(payload: dict, path: str | Path) -> Provenance:
    architecture = payload.get("architecture")
    args = payload.get("builder_args") or {}
    if not isinstance(args, dict):
        raise CompressbenchError(f"{path}: builder_args must be a table, got {type(args).__name__}")
    if architecture == CHAIN:
        return Provenance.from_json(args)
    if architecture in BASE_BUILDERS:
        return Provenance(Base(architecture, dict(args)))
    raise CompressbenchError(
        f"{path}: unknown architecture {architecture!r}; known: {', '.join([CHAIN, *BASE_BUILDERS.names()])}"
    )


# -- the saved-file format --------------------------------------------------------------------------


def check_savable(provenance: Provenance, path: str | Path) -> Path:
    """Fail before any work when a model of this provenance cannot be saved at ``path``."""
    if not provenance.rebuildable:
        raise CompressbenchError(
            "only a model that starts from a registered model or a saved compressbench model can be saved "
            "(this one's origin is unknown, so nothing could rebuild it)"
        )
    return check_writable(path)


def save_model(module: nn.Module, provenance: Provenance, path: str | Path, metadata: dict | None = None) -> Path:
    """Write ``module`` atomically so that :func:`load_model` rebuilds it from ``provenance``."""
    path = check_savable(provenance, path)
    payload = {
        "format": FORMAT,
        "architecture": CHAIN,
        # through JSON: plain types only (weights_only loads refuse str subclasses such as TorchVersion)
        "builder_args": json.loads(render_json(provenance.to_json(with_reports=False))),
        "metadata": json.loads(render_json(metadata or {})),
        "state_dict": module.state_dict(),
    }
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
        os.close(fd)
        torch.save(payload, tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except OSError as exc:  # the disk filled up, the folder went away: one line, no half-written file
        raise CompressbenchError(f"cannot write {path}: {(exc.strerror or type(exc).__name__).lower()}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_model_file(path: str | Path) -> tuple[nn.Module, Provenance, dict]:
    """Rebuild a saved model: ``(module in eval mode, its provenance, its metadata)``."""
    payload = read_checkpoint(path)
    if not is_model_file(payload):
        weights_only = isinstance(payload, dict) and (
            FOMM_KEY in payload or (payload and all(isinstance(v, torch.Tensor) for v in payload.values()))
        )
        hint = (
            "; it holds weights only (a FOMM checkpoint or a state dict): load them into a registered model with "
            f"--model teacher --checkpoint {path}"
            if weights_only
            else "; give a model saved with --out (e.g. compressbench compress --method exact --out model.pt)"
        )
        raise CompressbenchError(f"{path} is not a compressbench model file (format {FORMAT!r}){hint}")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CompressbenchError(f"{path} is a compressbench model file without a state dict; save the model again")
    provenance = _provenance_in(payload, path)
    module = provenance.build()
    load_state_dict_strict(module, state, path)
    return module.eval(), provenance, dict(payload.get("metadata") or {})


def sidecar_path(path: str | Path) -> Path:
    """``model.pt`` -> ``model.pt.json``: the same chain, its reports and measured row, as JSON."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def save_variant(variant: Variant, path: str | Path, metadata: dict | None = None, sidecar: dict | None = None) -> Path:
    """Save ``variant`` (loadable with :func:`load_model`) and, with ``sidecar``, ``FILE.json``
    recording its chain with every stage's report plus ``sidecar``'s entries; both or neither.
    Returns the model file's path."""
    meta = {"name": variant.name, "method": variant.method, "int8": variant.int8, **(metadata or {})}
    written = save_model(variant.module, variant.provenance, path, meta)
    if sidecar is not None:
        document = {
            "format": SIDECAR_FORMAT, "model_file": Path(path).name, "variant": variant.name, "method": variant.method,
            "int8": variant.int8, **variant.provenance.to_json(), **sidecar,
        }  # fmt: skip
        try:
            write_atomic(sidecar_path(path), render_json(document))
        except BaseException:
            Path(path).unlink(missing_ok=True)
            raise
    return written


# -- the one route from a name or a file to a module -------------------------------------------------


def load_variant(
    source: str | Path | nn.Module,
    checkpoint: str | Path | None = None,
    config: str | Path | DetectorConfig | None = None,
    weights: str = "default",
    name: str | None = None,
) -> Variant:
    """A registered name, a saved model file, a deployed file (or a module) in one trip: a
    :class:`Variant` holding the module in eval mode, its provenance and its row label
    (:func:`model_label`; ``name`` overrides it). A file is read once, for the module and the
    provenance both; the arguments are those of :func:`load_model`. A module given as ``source``
    is taken as it is (``"model"`` its label), its provenance the base that rebuilds it, if any."""
    if isinstance(source, nn.Module):
        if checkpoint is not None or config is not None:
            raise CompressbenchError("checkpoint and config apply to a registered name or a file, not to a module")
        return Variant(name or "model", source, provenance_of(source))
    module, provenance = _load(source, checkpoint, config, weights)
    return Variant(name or model_label(source), module, provenance)


def load_model(
    name_or_path: str | Path,
    checkpoint: str | Path | None = None,
    config: str | Path | DetectorConfig | None = None,
    weights: str = "default",
) -> nn.Module:
    """A registered model by name, or a saved model file, in eval mode.

    ``config`` is a FOMM YAML file (or a :class:`DetectorConfig`); ``checkpoint`` a FOMM checkpoint
    (its ``kp_detector`` entry), a bare state dict or a compressbench model file, read with
    ``weights_only=True``. ``weights='random'`` keeps the random initialisation; ``'default'`` uses
    the model's shipped trained weights where it has any. :func:`load_variant` returns the
    provenance and the label with it.
    """
    return _load(name_or_path, checkpoint, config, weights)[0]


def _load(
    name_or_path: str | Path, checkpoint: str | Path | None, config: str | Path | DetectorConfig | None, weights: str
) -> tuple[nn.Module, Provenance]:
    """The module (eval mode) and its provenance, reading a saved file once."""
    if weights not in WEIGHTS_CHOICES:
        raise CompressbenchError(f"unknown weights {weights!r}; choose one of: {', '.join(WEIGHTS_CHOICES)}")
    if not isinstance(name_or_path, (str, Path)):
        raise CompressbenchError(f"load_model takes a registered name or a file path, got {type(name_or_path).__name__}")
    name = str(name_or_path)
    if name not in MODELS and is_deployed(name):
        if config is not None or checkpoint is not None:
            raise CompressbenchError(f"{name} is a deployed file: it carries its own weights and configuration")
        return DeployedModel(name), Provenance()  # the module is the file: nothing rebuilds or compresses it further
    if name not in MODELS and not _is_file(name) and _names_a_file(name):
        raise CompressbenchError(
            f"model file {name} {input_file_problem(name)}; give a saved model file (written with --out) or a "
            f"registered model: {', '.join(MODELS.names())}"
        )
    if name not in MODELS and _is_file(name):
        if config is not None:
            raise CompressbenchError(f"config does not apply to a saved model file ({name}); it carries its own")
        model, provenance, _ = read_model_file(name)
    else:
        detector_config = read_fomm_config(config) if isinstance(config, (str, Path)) else config
        model = build_model_with_weights(name, detector_config, default_weights=checkpoint is None and weights == "default")
        provenance = _registered(name, model)
    if checkpoint is not None:
        raw = read_checkpoint(checkpoint)
        state = raw["state_dict"] if is_model_file(raw) else extract_state_dict(raw, checkpoint)
        load_state_dict_strict(model, state, checkpoint)
    return model.eval(), provenance


def untrained_note(name_or_path: str | Path, weights: str = "default", checkpoint: str | Path | None = None) -> str | None:
    """A note for a registered model that runs without trained weights (its AKD is that of noise);
    None for trained ones, saved files (what the user made) and models given a checkpoint."""
    name = str(name_or_path)
    if name not in MODELS or checkpoint is not None:
        return None
    if weights == "random" or not has_default_weights(name):
        return (
            f"{name} runs with random weights (it has no trained weights{' loaded' if weights == 'random' else ''}): "
            f"this AKD measures an untrained network; train it first, e.g. compressbench distill --student {name} "
            f"--out {name}.pt, then evaluate --model {name}.pt"
        )
    return None


def model_label(name_or_path: str | Path) -> str:
    """A short row name: a registered name whole (``squeeze-unet-0.5``), a file's stem, an export folder's name."""
    name = str(name_or_path)
    if name in MODELS:
        return name
    path = Path(name)
    if path.is_dir() and is_deployed(path):
        return path.resolve().name
    return path.stem if path.suffix in (".pt", ".pth", ".tar") or _is_file(name) else name


# -- deriving variants -------------------------------------------------------------------------------


def derive(
    model: nn.Module,
    chain: str | list[str],
    options: list[dict] | None = None,
    context: CompressionContext | None = None,
    provenance: Provenance | None = None,
    name: str = "teacher",
) -> list[Variant]:
    """Apply the method chain to ``model`` left to right; one :class:`Variant` per stage (the last is
    the result), each with ``provenance`` (default: of ``model``) extended by the stages so far.
    ``model`` itself is never modified."""
    names = parse_chain(chain)
    provenance = provenance if provenance is not None else provenance_of(model)
    variants = []
    for module, stage in apply_chain(model, names, options, context or CompressionContext()):
        provenance = provenance.then(Stage.from_json(stage))
        label = name + "+" + "+".join(s.method for s in provenance.stages[-len(variants) - 1 :])
        variants.append(Variant(label, module, provenance))
    return variants


def with_module(variant: Variant, module: nn.Module, *stages: Stage) -> Variant:
    """A copy of ``variant`` holding ``module`` (e.g. after training), with ``stages`` appended."""
    out = copy.copy(variant)
    out.module = module
    out.provenance = variant.provenance.then(*stages)
    return out
