"""``recover``: fine-tune the current module to agree with the chain's teacher again.

Structural stages (prune, asym, dsconv) lose agreement; a short distillation against the model the
chain started from buys most of it back (prune 0.5 on the default teacher: 20.9 px -> about 2 px in
300 steps). The stage runs :func:`compressbench.distillation.finetune.finetune`, the loop ``distill`` uses:
the teacher labels a pool of calibration frames once (frames the evaluation never sees), the student
trains on them with a distillation loss and a cosine schedule, validation AKD on other calibration
frames keeps the best weights and stops early.

A fixed pool is trained on for many epochs, and the student can learn it better than frames it has
not seen. ``augment`` augments every batch (:mod:`compressbench.data.augment`) and has the teacher
label it in the step (re-labelled, never transformed labels: the teacher is not exactly equivariant),
or with ``augment_per=pool`` augments each pool once and labels it once (the cheap way, with ``refresh``);
``refresh`` replaces the pool every so many steps with the next calibration frames, streamed through
:meth:`CompressionContext.frames_at`. Both are off by default: ``benchmarks/recover_generalisation.py``
is the measurement that would turn them on.

Its structure is empty: the module's shape is the previous stage's, and a saved variant gets the
recovered weights from its state dict, so :meth:`Recover.rebuild` is the identity.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from compressbench.compression.base import CompressionContext, CompressionMethod, Option, StageResult
from compressbench.compression.methods import register_method
from compressbench.data.augment import AUGMENTS
from compressbench.distillation.finetune import AUGMENT_PER, TRAINING_PRECISIONS, FinetuneSettings, agreement, finetune
from compressbench.distillation.losses import LOSSES
from compressbench.errors import CompressbenchError


def _positive(value) -> str | None:
    return None if value > 0 else f"must be positive, got {value}"


def _zero_or_positive(zero_means: str):
    """An option check for a count where 0 means ``zero_means``."""

    def check(value) -> str | None:
        return None if value >= 0 else f"must be zero ({zero_means}) or positive, got {value}"

    return check


def _device(value: str) -> str | None:
    if value in ("", "cpu"):
        return None
    if value.startswith("cuda"):  # asked now, so a missing GPU is found before the stages before recover run
        return None if torch.cuda.is_available() else f"is {value}, but torch sees no CUDA device here; use cpu"
    return f"must be cpu or cuda[:N] (empty: the context's device), got {value!r}"


# The schedule a recover stage runs when the user does not set lr or val_every. lr 5e-4 was tuned for
# a few hundred steps (prune-0.5, 300 steps: 20.9 -> about 2 px); over thousands of steps its early
# updates undo what was learnt (4,000 steps at 5e-4: 1.05 px held-out; 3,800 at 2.5e-4: 0.92 px;
# benchmarks/results/amd-epyc-avx512/recover-bf16-*.json). So the lr halves for every tenfold more
# steps than 300, which gives those two measured points. Validations are spaced so that a run holds
# about 20 of them: patience 5 then stops a run only after a quarter of it brought no improvement,
# where 100-step spacing stopped a 3,000-step run after 500 steps of a slow stretch.
BASE_LR, BASE_STEPS = 5e-4, 300
VALIDATIONS_PER_RUN, MIN_VAL_EVERY = 20, 100


def scaled_lr(steps: int) -> float:
    """The default lr of a ``steps``-step recover stage: BASE_LR up to BASE_STEPS, then halving per decade."""
    return BASE_LR * min(1.0, (BASE_STEPS / steps) ** math.log10(2))


def scaled_val_every(steps: int) -> int:
    """The default validation spacing: about VALIDATIONS_PER_RUN validations, at least MIN_VAL_EVERY steps apart."""
    return max(MIN_VAL_EVERY, 50 * round(steps / VALIDATIONS_PER_RUN / 50))


def resolved_schedule(options: dict) -> dict:
    """lr and val_every as the stage runs them: the user's, or the defaults scaled with the steps."""
    steps = options["steps"]
    lr = options["lr"] if options["lr"] is not None else scaled_lr(steps)
    val_every = options["val_every"] if options["val_every"] is not None else scaled_val_every(steps)
    return {"lr": lr, "val_every": min(val_every, steps)}


INT8_DTYPES = (torch.int8, torch.uint8, torch.qint8, torch.quint8)


def _has_int8_parts(module: nn.Module) -> bool:
    """Quantized modules or 8-bit weights anywhere (fx, pt2e and codebook back-ends all leave one)."""
    if any(".quantized" in type(m).__module__ for m in module.modules()):
        return True
    state = module.state_dict()
    return any(isinstance(t, torch.Tensor) and (t.is_quantized or t.dtype in INT8_DTYPES) for t in state.values())


def _trainable(module: nn.Module, example: torch.Tensor) -> bool:
    """Whether the whole module can be trained: float weights only, and gradients reach its outputs."""
    if _has_int8_parts(module) or not any(p.is_floating_point() for p in module.parameters()):
        return False
    was_training = module.training
    module.eval()
    try:
        with torch.enable_grad():
            for parameter in module.parameters():
                parameter.requires_grad_(True)
            value = module(example)["value"]
    except (RuntimeError, NotImplementedError):
        return False
    finally:
        module.train(was_training)
    return bool(value.requires_grad)


def same_network(a: nn.Module, b: nn.Module) -> bool:
    """The same parameters and buffers, name by name, shape by shape, value by value."""
    first, second = a.state_dict(), b.state_dict()
    return first.keys() == second.keys() and all(
        first[k].shape == second[k].shape and first[k].dtype == second[k].dtype and torch.equal(first[k], second[k])
        for k in first
    )


def check_recover_can_change(
    chain: list[str], model: nn.Module, teacher: nn.Module | None = None, prior_methods: tuple[str, ...] = ()
) -> None:
    """Refuse, before any work, a ``recover`` stage of ``chain`` (applied to ``model``) that cannot
    change anything: minutes of training that end where they start.

    recover fine-tunes towards ``teacher`` (None: the model the chain starts from, so the stage can
    only win back what a structural stage before it lost), and it trains float weights only (after an
    int8 stage there is nothing to train). ``prior_methods`` are the stages the model was made with
    (a saved pruned model), which decide the advice."""
    from compressbench.compression.methods import METHODS, get_method

    structural = ", ".join(n for n in METHODS.names() if get_method(n).structural)
    for index, name in enumerate(chain):
        if name != "recover":
            continue
        before = chain[:index]
        int8 = [n for n in before if get_method(n).int8]
        if int8:
            raise CompressbenchError(
                f"recover (stage {index + 1} of --method {','.join(chain)}) comes after {int8[0]}: an int8 model has "
                f"no float weights to train; put recover before {int8[0]} (e.g. --method prune,recover,{int8[0]})"
            )
        if any(get_method(n).structural for n in before):
            continue
        if teacher is None:
            made = any(get_method(n).structural for n in prior_methods if n in METHODS)
            fix = (
                "give the model it was made from with --teacher (e.g. --teacher teacher)"
                if made
                else "prune first (e.g. --method prune,recover), or give the model to agree with as --teacher"
            )
            raise CompressbenchError(
                f"recover (stage {index + 1} of --method {','.join(chain)}) has nothing to recover: it fine-tunes the "
                f"model towards its teacher, which is the model itself here (no --teacher), and no stage before it "
                f"changes the structure ({structural}); {fix}"
            )
        if same_network(model, teacher):
            raise CompressbenchError(
                f"recover (stage {index + 1} of --method {','.join(chain)}) has nothing to recover: the model and "
                "--teacher are the same network with the same weights; give the teacher the model was made from, "
                "or prune first (e.g. --method prune,recover)"
            )


@register_method
class Recover(CompressionMethod):
    name = "recover"
    summary = "fine-tune the module to agree with the chain's teacher again (distillation on calibration frames)"
    options = (
        Option("steps", int, 300, "training steps", check=_positive),
        Option("lr", float, None, "Adam learning rate, cosine schedule (default: 5e-4 up to 300 steps, halving for "
               "every tenfold more steps: 2.5e-4 at 3,000)", check=_positive),
        Option("warmup", int, 0, "steps over which the lr rises linearly from lr/warmup to lr (0: none)",
               check=_zero_or_positive("no warm-up")),
        Option("loss", str, "l1", "distillation loss (l1: keypoints + jacobians; l2: + heatmaps; l3: + encoder attention)",
               choices=tuple(LOSSES.names())),
        Option("pool", int, 1024, "calibration frames the teacher labels once and training draws from", check=_positive),
        Option("augment", str, "none", "augment every training batch, the teacher labelling each augmented batch "
               "(none, flip, colour, warp: random affine, full: warp + flip + colour; one teacher forward per step)",
               choices=AUGMENTS),
        Option("augment_per", str, "batch", "where augment happens: batch (every batch, labelled in the step) or pool "
               "(each pool augmented and labelled once; with refresh, a fresh augmented pool every `refresh` steps at "
               "about a fixed pool's cost per step)", choices=AUGMENT_PER),
        Option("refresh", int, 0, "steps between pool refreshes: the pool is replaced by the next `pool` calibration "
               "frames, streamed (synthetic frames are never repeated; a folder wraps round) (0: one fixed pool)",
               check=_zero_or_positive("one fixed pool")),
        Option("batch", int, 16, "frames per step", check=_positive),
        Option("patience", int, 5, "validations without improvement before stopping (0: never stop early)",
               check=_zero_or_positive("never stop early")),
        Option("val_every", int, None, "steps between validations (default: steps / 20, at least 100)", check=_positive),
        Option("val_frames", int, 64, "calibration frames for validation (never trained on, never evaluated on)",
               check=_positive),
        Option("device", str, "", "cpu or cuda (empty: the context's device)", check=_device),
        Option("channels_last", bool, True, "train in NHWC memory format (same math, 1.4-1.6x faster steps on x86 CPUs)"),
        Option("precision", str, "fp32", "training precision: fp32, or bf16 autocast (about 2x faster steps with "
               "channels_last on CPUs with bf16 instructions)", choices=tuple(TRAINING_PRECISIONS.names())),
    )  # fmt: skip

    def apply(self, model: nn.Module, options: dict, context: CompressionContext) -> StageResult:
        if context.teacher is None:
            raise CompressbenchError("recover needs the chain's teacher; give CompressionContext(teacher=...)")
        if options["warmup"] > options["steps"]:
            raise CompressbenchError(f"recover: warmup {options['warmup']} is longer than steps {options['steps']}")
        if options["batch"] > options["pool"]:
            raise CompressbenchError(f"recover: batch {options['batch']} is larger than pool {options['pool']}")
        device = options["device"] or context.device
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise CompressbenchError(f"recover: device {device} asked for, but torch sees no CUDA device")
        student = copy.deepcopy(model).cpu()
        if not _trainable(student, context.example()[:1]):
            raise CompressbenchError(
                "recover cannot train this module (int8 or otherwise without gradients); put recover before quantize"
            )
        teacher = copy.deepcopy(context.teacher).cpu().eval()
        try:
            frames = context.frames(options["val_frames"] + options["pool"])
        except CompressbenchError as exc:
            raise CompressbenchError(
                f"recover: {exc} (recover uses val_frames + pool = {options['val_frames'] + options['pool']} "
                "calibration frames; lower them with --set recover.pool=N --set recover.val_frames=M)"
            ) from None
        if len(frames) < options["val_frames"] + options["pool"]:
            raise CompressbenchError(
                f"recover needs {options['val_frames'] + options['pool']} calibration frames "
                f"(val_frames + pool), got {len(frames)}"
            )
        val_images = frames[: options["val_frames"]].float()
        train_images = (frames[options["val_frames"] :].clamp(0, 1) * 255.0).round().to(torch.uint8)
        del frames
        size = int(val_images.shape[-1])
        with torch.no_grad():
            before = agreement(student, teacher, val_images)
        schedule = resolved_schedule(options)
        settings = FinetuneSettings(
            steps=options["steps"], batch=options["batch"], lr=schedule["lr"], warmup=options["warmup"], loss=options["loss"],
            pool=options["pool"], augment=options["augment"], augment_per=options["augment_per"],
            refresh=options["refresh"], channels_last=options["channels_last"], precision=options["precision"],
            seed=context.seed, device=device, val_every=schedule["val_every"],
            patience=options["patience"] or None, size=size, progress=context.show_progress,
            description=f"recover ({options['loss']}, {options['steps']} steps)", label="the module before recover",
        )  # fmt: skip
        teacher.to(device)  # labels the pool where the training runs
        # the same teacher on the same frames labels the same pool: label it once per context
        pools = context.shared.setdefault(("recover pools", id(context.teacher), options["val_frames"], device), {})
        offset = options["val_frames"]  # a refreshed pool reads the calibration frames after the first pool's

        def pool_frames(position: int, count: int) -> torch.Tensor:
            return context.frames_at(offset + position, count)

        result = finetune(student, teacher, settings, val_images, train_images, pools, pool_frames)
        recovered = result.model.student.cpu().eval()
        curve = [
            {"step": 0, "loss": None, "val_akd_px": before["akd_px"], "val_jacobian_error": before["jacobian_error"]}
        ] + [
            {"step": int(row["step"]), "loss": row.get("loss"), "val_akd_px": row.get("akd_px"),
             "val_jacobian_error": row.get("jacobian_error")}
            for row in result.history
        ]  # fmt: skip
        report = {
            "lr": schedule["lr"],
            "val_every": schedule["val_every"],
            "steps_run": result.step,
            "best_step": result.best_step,
            "stopped_early": result.stopped_early,
            "augment": options["augment"],
            "augment_per": options["augment_per"],
            "refresh": options["refresh"],
            # pools trained on: each refresh brings `pool` new frames (a folder or video wraps round)
            "pools_used": 1 + (max(result.step, 1) - 1) // options["refresh"] if options["refresh"] else 1,
            "val_akd_before_px": before["akd_px"],
            "val_akd_after_px": result.best_value,
            "seconds": result.seconds,
            "device": device,
            "validation": curve,
        }
        return StageResult(recovered, {}, report)

    def rebuild(self, model: nn.Module, options: dict, structure: dict) -> nn.Module:
        """Identity: recovery changes weights, not structure (the weights come from the saved state dict)."""
        return model
