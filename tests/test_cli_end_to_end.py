"""preprocess -> train -> generate / interactive / validate / hub, and resume, through the real CLIs."""
import re

from conftest import TINY_TRAIN_ARGS, USER_DIR, cli


def test_generate_prints_bleu(toy_bin, tiny_checkpoint):
    out = cli("fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--path", tiny_checkpoint,
              "--beam", "4", "--batch-size", "64", "--cpu", "--quiet")
    assert re.search(r"Generate test with beam=4: BLEU4 = \d+\.\d+", out.stdout + out.stderr)


def test_interactive_and_validate_load_the_checkpoint(toy_bin, tiny_checkpoint):
    out = cli("bash", "-c",
              f"echo 'the cat sat on the mat' | fairseq-interactive {toy_bin} --user-dir {USER_DIR} "
              f"--path {tiny_checkpoint} --source-lang en --target-lang zh --beam 2 --cpu")
    assert re.search(r"^H-0\t", out.stdout, re.M)
    out = cli("fairseq-validate", toy_bin, "--user-dir", USER_DIR, "--task", "translation_ext",
              "--path", tiny_checkpoint, "--valid-subset", "valid", "--cpu", "--max-tokens", "4000")
    assert re.search(r"valid on 'valid' subset \| loss \d", out.stdout + out.stderr)


def test_hub_interface_loads_and_translates(toy_bin, tiny_checkpoint):
    import fairseq_ext  # noqa: F401  the plugin must be loaded in-process, as with --user-dir
    from fairseq.models.transformer import TransformerModel

    hub = TransformerModel.from_pretrained(
        str(tiny_checkpoint.parent), checkpoint_file=tiny_checkpoint.name, data_name_or_path=str(toy_bin)
    )
    translation = hub.translate("the cat sat on the mat", beam=2)
    assert isinstance(translation, str) and translation.strip()


def test_resume_with_restore_file(toy_bin, tiny_checkpoint, tmp_path):
    out = cli("fairseq-train", toy_bin, *TINY_TRAIN_ARGS, "--max-update", "40", "--save-dir", tmp_path,
              "--restore-file", tiny_checkpoint)
    log = out.stdout + out.stderr
    assert re.search(r"Loaded checkpoint .*checkpoint_last\.pt \(epoch \d+ @ 30 updates\)", log)
    assert re.search(r"num_updates 40\b", log)
    assert not re.search(r"num_updates (?:[0-2]?\d)\b", log)  # nothing before update 30 was re-run
