"""``--device auto|cpu|cuda``: the one reading of it for every stage that runs a model."""
DEVICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    pass


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a CUDA device, else ``cpu``; ``cuda`` without one is an error."""
    if requested not in DEVICES:
        raise DeviceError(f"device must be auto, cpu or cuda, got {requested!r}")
    if requested == "cpu":
        return "cpu"
    import torch  # only when a device has to be looked for

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise DeviceError("device=cuda but torch sees no CUDA device")
    return requested


def add_device_option(parser, default="auto", help_text="where the model runs (default: %(default)s)"):
    parser.add_argument("--device", choices=DEVICES, default=default, help=help_text)
