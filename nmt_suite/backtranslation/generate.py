"""One shard job of back-translation: decode this shard's chunks of the monolingual split.

    python -m nmt_suite.backtranslation.generate --data data/X/bin-mono \\
        --path runs/X/reverse/checkpoint_avg.pt --out-dir runs/X/bt/beam --shards 4 --shard-id 2

The reverse model is loaded with fairseq's checkpoint utilities (our plugin imported, so
its task and architectures resolve) and decoded with fairseq's own ``SequenceGenerator``
through ``task.build_generator`` / ``task.inference_step``, batched by fairseq's batch
iterator, exactly as fairseq-generate and fairseq-interactive do. What this module adds is
the bookkeeping of :mod:`.shards`: each chunk goes to a temporary file that is renamed when
the chunk is complete, so killing the job at any moment and starting it again produces the
same files as an uninterrupted run.

What decides the output (data and checkpoint hashes, decoding settings, chunk size, seed,
batch size) is the generation's key (:mod:`nmt_suite.stage_cache`, record
``<out-dir>/.stages/generation.json``), and ``<out-dir>/generation.json`` describes it for the
reader. A job whose key differs from the one recorded stops with an error instead of mixing
two generations in one directory.
Sampling is seeded per chunk, so a chunk's sample does not depend on which chunks ran before.
"""
import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

from tqdm import tqdm

from nmt_suite.backtranslation.decoding import CHOICES, Decoding
from nmt_suite.backtranslation.shards import ChunkPlan, Record, chunk_dir, chunk_path
from nmt_suite.device import DeviceError, add_device_option, resolve_device
from nmt_suite.files import atomic_open, atomic_write_json, remove_stale_temps, sha256_file
from nmt_suite.stage_cache import StageRecords, stage_key
from nmt_suite.tokens import BT_TAG

logger = logging.getLogger("nmt_suite.backtranslation.generate")

GENERATION_JSON = "generation.json"  # the description of the generation, for the reader
GENERATION_STAGE = "generation"
STAGES_DIR = ".stages"
JOBS_LOG = "jobs.jsonl"  # one line per shard job that decoded something: what it did and how long it took


class GenerationError(RuntimeError):
    """Bad input or settings; the message names the file."""


def chunk_seed(seed: int, chunk: int) -> int:
    import numpy as np

    return int(np.random.SeedSequence([seed, chunk]).generate_state(1)[0])


def generation_records(out_dir: Path) -> StageRecords:
    return StageRecords(Path(out_dir) / STAGES_DIR, base=out_dir)


def recorded_settings(out_dir: Path):
    """The settings of the generation in ``out_dir`` (see :func:`generation_settings`), or None."""
    record = generation_records(out_dir).read(GENERATION_STAGE)
    return None if record is None else record["info"]["settings"]


def monolingual_prefix(data: Path, subset: str, src: str, tgt: str) -> Path:
    """The binarized monolingual split, named like fairseq names language-pair files."""
    from fairseq.data import indexed_dataset

    for pair in (f"{src}-{tgt}", f"{tgt}-{src}"):
        prefix = data / f"{subset}.{pair}.{src}"
        if indexed_dataset.dataset_exists(str(prefix), impl="mmap"):
            return prefix
    raise GenerationError(
        f"no binarized '{subset}' split for source language '{src}' in {data} "
        f"(looked for {subset}.{src}-{tgt}.{src}.bin/.idx and {subset}.{tgt}-{src}.{src}.bin/.idx)"
    )


def load_reverse_model(checkpoint: Path, data: Path, device: str, fp16: bool):
    from fairseq import checkpoint_utils

    from nmt_suite.plugin import load_plugin

    load_plugin()  # registers the plugin's task and architectures, as --user-dir does

    if not checkpoint.is_file():
        raise GenerationError(f"checkpoint not found: {checkpoint}")
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(checkpoint)], arg_overrides={"data": str(data)}
    )
    for model in models:
        model.eval()
        if fp16:
            model.half()
        model.to(device)
    return models, cfg, task


def generation_description(args, decoding: Decoding, prefix: Path, num_sentences: int) -> dict:
    """Everything that decides the generated text, with the paths it was read from (for the reader)."""
    return {
        "data": {
            "prefix": str(prefix),
            "bin_sha256": sha256_file(f"{prefix}.bin"),
            "idx_sha256": sha256_file(f"{prefix}.idx"),
            "num_sentences": num_sentences,
        },
        "checkpoint": {"path": str(args.path), "sha256": sha256_file(args.path)},
        "decoding": decoding.generation_settings(),
        "chunk_size": args.chunk_size,
        "seed": args.seed,
        "max_tokens": args.max_tokens,
        "batch_size": args.batch_size,
        "fp16": args.fp16,
    }


def generation_settings(description: dict) -> dict:
    """The description without its paths: what the key of the generation is computed from."""
    return {
        **description,
        "data": {k: v for k, v in description["data"].items() if k != "prefix"},
        "checkpoint": description["checkpoint"]["sha256"],
    }


def check_or_record_settings(out_dir: Path, description: dict) -> None:
    """Claim ``out_dir`` for this generation, or stop if it holds one with other settings.

    The record is written before any chunk (and never changes after), so every chunk in the
    directory was decoded with the recorded settings; shard jobs of one generation, wherever
    they run, compute the same key and share the directory.
    """
    records = generation_records(out_dir)
    settings = generation_settings(description)
    key = stage_key(GENERATION_STAGE, settings)
    existing = records.read(GENERATION_STAGE)
    if existing is None:
        if any(chunk_dir(out_dir).glob("chunk-*.tsv")):
            raise GenerationError(
                f"{chunk_dir(out_dir)} holds chunks but {records.path(GENERATION_STAGE)} does not record "
                f"their settings; use another --out-dir, or delete {out_dir} to start over"
            )
        atomic_write_json(out_dir / GENERATION_JSON, description)
        records.write(GENERATION_STAGE, key, settings=settings)
    elif records.up_to_date(GENERATION_STAGE, key) is None:
        recorded = existing["info"]["settings"]
        diff = sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k))
        raise GenerationError(
            f"{out_dir} holds a generation with other settings (differing: {', '.join(diff)}; "
            f"recorded in {out_dir / GENERATION_JSON}); use another --out-dir, or delete {out_dir} to start over"
        )


def decode_chunk(task, models, generator, dataset, ids: range, args, max_positions) -> list:
    """Records for ``ids`` in id order; ids too long for the model get an empty hypothesis."""
    import torch

    src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
    # The joined dictionary holds the tag; a reverse model never saw it as a target, but an
    # undertrained one may still emit it, and a synthetic source must not carry it untagged.
    never_output = {tgt_dict.index(BT_TAG)} - {tgt_dict.unk()}
    tokens = [dataset[i] for i in ids]
    chunk_data = task.build_dataset_for_inference(tokens, [t.numel() for t in tokens])
    batches = task.get_batch_iterator(
        dataset=chunk_data,
        max_tokens=args.max_tokens,
        max_sentences=args.batch_size,
        max_positions=max_positions,
        ignore_invalid_inputs=True,
        seed=args.seed,
        num_workers=0,
        disable_iterator_cache=True,
    ).next_epoch_itr(shuffle=False)
    hypotheses = {}
    for sample in batches:
        if "net_input" not in sample:
            continue
        sample = {k: (v.to(args.device) if torch.is_tensor(v) else v) for k, v in sample.items()}
        sample["net_input"] = {k: v.to(args.device) for k, v in sample["net_input"].items()}
        for local_id, nbest in zip(sample["id"].tolist(), task.inference_step(generator, models, sample)):
            best = nbest[0]
            hypotheses[local_id] = (float(best["score"]),
                                    tgt_dict.string(best["tokens"].int().cpu(), extra_symbols_to_ignore=never_output))
    records = []
    for local_id, sentence_id in enumerate(ids):
        score, hypothesis = hypotheses.get(local_id, (math.nan, ""))
        records.append(Record(sentence_id, score, src_dict.string(tokens[local_id]), hypothesis))
    return records


def run_shard(args) -> dict:
    from fairseq import utils
    from fairseq.data import data_utils

    decoding = Decoding(args.decoding, beam=args.beam, topk=args.topk, temperature=args.temperature,
                        max_len_a=args.max_len_a, max_len_b=args.max_len_b)
    if not args.data.is_dir():
        raise GenerationError(f"monolingual data directory not found: {args.data}")
    models, cfg, task = load_reverse_model(args.path, args.data, args.device, args.fp16)
    src, tgt = task.cfg.source_lang, task.cfg.target_lang
    prefix = monolingual_prefix(args.data, args.subset, src, tgt)
    dataset = data_utils.load_indexed_dataset(str(prefix), task.source_dictionary, "mmap")
    num_sentences = min(len(dataset), args.limit) if args.limit else len(dataset)
    plan = ChunkPlan(num_sentences, args.chunk_size)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    check_or_record_settings(args.out_dir, generation_description(args, decoding, prefix, num_sentences))

    chunks = plan.chunks_of_shard(args.shard_id, args.shards)
    todo = [c for c in chunks if not chunk_path(args.out_dir, c).exists()]
    for c in todo:
        remove_stale_temps(chunk_dir(args.out_dir), chunk_path(args.out_dir, c).name)
    logger.info(
        "shard %d/%d (%s -> %s, %s): %d chunks of %d sentences, %d already done, %d to decode",
        args.shard_id, args.shards, src, tgt, decoding.generation_method,
        len(chunks), args.chunk_size, len(chunks) - len(todo), len(todo),
    )
    generator = task.build_generator(models, decoding.fairseq_args())
    max_positions = utils.resolve_max_positions(task.max_positions(), *[m.max_positions() for m in models])
    start, decoded = time.time(), 0
    progress = tqdm(total=sum(len(plan.ids(c)) for c in todo), unit="sent",
                    desc=f"shard {args.shard_id}", disable=not sys.stderr.isatty())
    for c in todo:
        ids = plan.ids(c)
        utils.set_torch_seed(chunk_seed(args.seed, c))
        records = decode_chunk(task, models, generator, dataset, ids, args, max_positions)
        with atomic_open(chunk_path(args.out_dir, c)) as out:
            out.writelines(r.to_line() for r in records)
        decoded += len(ids)
        progress.update(len(ids))
    progress.close()
    seconds = time.time() - start
    summary = {"shard_id": args.shard_id, "shards": args.shards, "chunks": len(chunks),
               "decoded_sentences": decoded, "seconds": round(seconds, 2), "device": args.device,
               "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if decoded:  # one short append per job: safe for jobs of other machines sharing the directory
        with open(args.out_dir / JOBS_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(summary, sort_keys=True) + "\n")
    logger.info("shard %d/%d done: %d sentences decoded in %.1fs", args.shard_id, args.shards, decoded, seconds)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="binarized monolingual dir (data/<corpus>/bin-mono)")
    parser.add_argument("--path", type=Path, required=True, help="reverse-model checkpoint")
    parser.add_argument("--out-dir", type=Path, required=True, help="where chunks and generation.json go")
    parser.add_argument("--subset", default="mono", help="split name of the monolingual data")
    parser.add_argument("--shards", type=int, default=1, help="number of shard jobs in total")
    parser.add_argument("--shard-id", type=int, default=0, help="which shard this job decodes")
    parser.add_argument("--chunk-size", type=int, default=1000,
                        help="sentences per atomically written chunk (the most a kill can lose)")
    parser.add_argument("--decoding", choices=CHOICES, default="beam")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--topk", type=int, default=10, help="k of top-k sampling")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    parser.add_argument("--max-len-a", type=float, default=Decoding.max_len_a)
    parser.add_argument("--max-len-b", type=int, default=Decoding.max_len_b)
    parser.add_argument("--max-tokens", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--limit", type=int, default=0,
                        help="decode only the first N sentences of the split (0: all)")
    parser.add_argument("--seed", type=int, default=1)
    add_device_option(parser)
    parser.add_argument("--fp16", action="store_true", help="half precision (CUDA only)")
    return parser


def main(argv=None) -> int:
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
                        level=logging.INFO, stream=sys.stderr)
    logging.getLogger("fairseq").setLevel(logging.WARNING)  # its batching logs a block per chunk
    args = build_parser().parse_args(argv)
    if args.limit < 0:
        print("error: --limit must be >= 0", file=sys.stderr)
        return 2
    try:
        args.device = resolve_device(args.device)
    except DeviceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.fp16 and args.device != "cuda":
        print("error: --fp16 needs --device cuda", file=sys.stderr)
        return 2
    try:
        run_shard(args)
    except (GenerationError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
