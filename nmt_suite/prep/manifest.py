"""``manifest.json``: what went into a prepared corpus and what came out.

Sources with sha256 and line counts, every option, kept/dropped counts per filter and
reason (with blank and wrong-script line counts), the sentencepiece model's hash, trainer
options and vocabulary size (requested and used), the dictionary, the sha256 of every
output, the step keys, tool versions. ``hash`` is a sha256 over the content-defining
parts (options, source hashes, output hashes): the run scripts record it as the corpus hash.
No timings or timestamps, so an interrupted and resumed run writes the same bytes.
"""
from nmt_suite.files import atomic_write_json, sha256_json
from nmt_suite.tokens import BT_TAG
from nmt_suite.versions import software_versions

MANIFEST = "manifest.json"


def tool_versions() -> dict:
    return software_versions("fairseq", "sentencepiece", "opencc", "fairseq_ext")


def _source_hashes(source_files: dict) -> dict:
    return {role: [f["sha256"] for f in files] if isinstance(files, list) else files
            for role, files in source_files.items()}


def build(opts, source_files: dict, origin: dict, counts: dict, ws, spm_info: dict, dict_info: dict,
          outputs: dict) -> dict:
    content = {
        "corpus": opts.corpus,
        "name": opts.name,
        "options": opts.content_options(),
        "sources": source_files,
        **origin,
        "counts": counts,
        "spm": {"model_sha256": outputs["spm/spm.model"], **spm_info, "bt_tag": BT_TAG,
                "sample_per_language": opts.spm_sample, "trained_on": ["clean/train.en", "clean/train.zh"]},
        "dictionary": {"path": "bin/dict.en.txt", "sha256": outputs["bin/dict.en.txt"], **dict_info},
        "outputs": dict(sorted(outputs.items())),
        "steps": {name: result.key for name, result in sorted(ws.results.items())},
        "versions": tool_versions(),
    }
    content["hash"] = sha256_json({"options": content["options"], "sources": _source_hashes(source_files),
                                   "outputs": content["outputs"]})
    return content


def write(path, content: dict) -> None:
    atomic_write_json(path, content)
