"""Tagged back-translation end to end: tagged synthetic sources in training, untagged input at inference."""
import json
import re

from bt_toy import BT_TAG, ONE_THREAD
from bt_toy import toy_boss_data, toy_corpus, toy_generation, toy_reverse_checkpoint  # noqa: F401  (fixtures)
from conftest import TINY_TRAIN_ARGS, USER_DIR, cli


def token_ids(bin_dir, name, lang):
    from fairseq.data import Dictionary, data_utils

    dictionary = Dictionary.load(str(bin_dir / f"dict.{lang}.txt"))
    data = data_utils.load_indexed_dataset(str(bin_dir / f"{name}.en-zh.{lang}"), dictionary, "mmap")
    return dictionary, [data[i].tolist() for i in range(len(data))]


def test_synthetic_sources_carry_the_tag_as_its_own_symbol(toy_boss_data):
    bin_dir = toy_boss_data / "bin"
    dictionary, synthetic = token_ids(bin_dir, "train1", "en")
    tag_id = dictionary.index(BT_TAG)
    assert tag_id != dictionary.unk()
    assert synthetic and all(sentence[0] == tag_id and tag_id not in sentence[1:] for sentence in synthetic)
    for name, lang in (("train", "en"), ("train", "zh"), ("train1", "zh"), ("valid", "en"), ("test", "en")):
        _, sentences = token_ids(bin_dir, name, lang)
        assert not any(tag_id in sentence for sentence in sentences), f"{name}.{lang} holds the tag"


def test_model_trained_on_tagged_data_translates_untagged_input(toy_boss_data, tmp_path):
    bin_dir = toy_boss_data / "bin"
    upsample = json.loads((toy_boss_data / "manifest.json").read_text())["fairseq_train_args"]
    train = cli("fairseq-train", bin_dir, *TINY_TRAIN_ARGS, *upsample, "--max-update", "8", "--save-dir", tmp_path,
                "--disable-validation", "--no-epoch-checkpoints", "--no-gnorm-log", env=ONE_THREAD)
    log = train.stdout + train.stderr
    synthetic = len(token_ids(bin_dir, "train1", "en")[1])
    assert re.search(rf"\btrain1 en-zh {synthetic} examples", log), "the tagged synthetic pairs were not trained on"

    # The test split is real, untagged English, as every user input is. (With fairseq's default
    # --required-batch-size-multiple 8, this fairseq build's batch_by_size drops the last
    # len % 8 sentences of a split: 24 of 30 here.)
    out = cli("fairseq-generate", bin_dir, "--user-dir", USER_DIR, "--path", tmp_path / "checkpoint_last.pt",
              "--gen-subset", "test", "--beam", "2", "--batch-size", "16", "--required-batch-size-multiple", "1",
              "--cpu", env=ONE_THREAD)
    sources = re.findall(r"^S-(\d+)\t(.*)$", out.stdout, re.M)
    hypotheses = re.findall(r"^H-(\d+)\t\S+\t(.*)$", out.stdout, re.M)
    assert len(sources) == len(hypotheses) == 30
    assert not any(BT_TAG in text for _, text in sources)
    assert all(text.strip() for _, text in hypotheses)
