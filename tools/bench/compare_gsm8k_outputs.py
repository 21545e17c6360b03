#!/usr/bin/env python3
"""Question-by-question check of `dsserve eval gsm8k` against SGLang's few_shot_gsm8k run on the
same server: the same generated text, and SGLang's own answer extraction (imported from the
installed sglang package) giving the prediction dsserve reported.

    dsserve eval gsm8k --num-questions N --dump ours.jsonl ...
    venv/bin/python -m sglang.test.few_shot_gsm8k --num-questions N --data-path ... # writes
        tmp_output_gsm8k.txt in the working directory
    venv/bin/python tools/bench/compare_gsm8k_outputs.py ours.jsonl tmp_output_gsm8k.txt
"""
import json
import re
import sys
import warnings

warnings.filterwarnings("ignore")  # few_shot_gsm8k's deprecation notice
from sglang.test.few_shot_gsm8k import INVALID, get_answer_value  # noqa: E402

RULE = "=" * 40


def sglang_answers(path):
    """{index: generated answer} from dump_state_text's file: per state a rule line with the
    index, the prompt and the answer, then a line of 80 '=' and a blank line."""
    text = open(path, encoding="utf-8").read()
    parts = re.split(f"{RULE} (\\d+) {RULE}\n", text)[1:]
    out = {}
    for index, body in zip(parts[::2], parts[1::2]):
        assert body.endswith("\n" + "=" * 80 + "\n\n"), body[-100:]
        body = body[: -len("\n" + "=" * 80 + "\n\n")]
        out[int(index)] = body[body.rfind("\nAnswer:") + len("\nAnswer:"):]
    return out


def main():
    ours = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
    theirs = sglang_answers(sys.argv[2])
    assert sorted(theirs) == list(range(len(ours))), "not the same questions"
    same_text = same_pred = 0
    for row in ours:
        answer = theirs[row["index"]]
        pred = get_answer_value(answer)
        pred = None if pred == INVALID else str(pred)
        same_text += answer == row["output"]
        same_pred += pred == row["pred"]
        if pred != row["pred"]:
            print(f"question {row['index']}: dsserve {row['pred']!r}, SGLang {pred!r}")
    print(f"{len(ours)} questions: identical outputs {same_text}, identical predictions {same_pred}")
    return 0 if same_text == same_pred == len(ours) else 1


if __name__ == "__main__":
    sys.exit(main())
