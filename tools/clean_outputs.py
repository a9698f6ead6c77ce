"""Drop TensorFlow's start-up log lines (no CUDA driver, oneDNN notices) from a notebook's stored stderr outputs.

They are printed by TensorFlow's C++ runtime at import, before Python can silence them (as is tqdm's
missing-widgets warning when keras_hub imports it), and only clutter the
stored outputs that readers see on GitHub and Colab. Nothing else is touched. Run by `make results`.
Usage: python tools/clean_outputs.py notebooks/*.ipynb
"""

import json
import re
import sys

NOISE = re.compile(r"cudart_stub|cuInit|cuda_platform|absl::InitializeLog|oneDNN custom operations|"
                   r"cpu_feature_guard|oneDNN supports DT_(BOOL|INT64)|To enable the following instructions|rebuild TensorFlow with|"
                   r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered|"
                   r"TF-TRT Warning|All log messages before absl|TqdmWarning: IProgress not found|from \.autonotebook import tqdm")


def clean(path):
    with open(path, encoding="utf-8") as f:
        notebook = json.load(f)
    removed = 0
    for cell in notebook["cells"]:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = "".join(output["text"]).splitlines(keepends=True)
                remaining = [line for line in lines if not NOISE.search(line)]
                removed += len(lines) - len(remaining)
                if not "".join(remaining).strip():
                    continue
                output["text"] = remaining
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    with open(path, "w", encoding="utf-8") as f:
        json.dump(notebook, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{path}: removed {removed} start-up log lines")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        clean(name)
