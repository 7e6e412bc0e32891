# Notebook-style example: load ADLB and plot the mean change from baseline by visit and arm.
# Run after `make run`:  python3 docs/notebook-example.py out/MSC-LC ALB /tmp/alb.png
# Needs pandas, pyarrow and matplotlib (pip install pandas pyarrow matplotlib).
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pyarrow.parquet as pq

out, paramcd, png = sys.argv[1], sys.argv[2], sys.argv[3]

# %% Load: dates arrive as dates, codes as categoricals, labels in the Arrow field metadata.
adlb = pd.read_parquet(f"{out}/adam/adlb.parquet")
labels = {
    f.name: (f.metadata or {}).get(b"label", b"").decode()
    for f in pq.read_schema(f"{out}/adam/adlb.parquet")
}

# %% Analysis records: the one record per subject, parameter and window the window rule chose.
d = adlb[(adlb.PARAMCD == paramcd) & (adlb.ANL01FL == "Y") & adlb.CHG.notna()]
summary = (
    d.groupby(["TRTP", "AVISITN", "AVISIT"], observed=True)["CHG"]
    .agg(n="count", mean="mean", sd="std")
    .reset_index()
)
summary["se"] = summary["sd"] / summary["n"] ** 0.5
print(summary.to_string(index=False))

# %% Plot mean ± SE by visit, one line per arm.
fig, ax = plt.subplots(figsize=(6, 4))
for arm, g in summary.groupby("TRTP", observed=True):
    ax.errorbar(g["AVISITN"], g["mean"], yerr=g["se"], marker="o", capsize=3, label=arm)
ax.axhline(0, color="grey", lw=0.5)
ax.set_xlabel(labels["AVISITN"] + " (weeks)")
ax.set_ylabel(f"{labels['CHG']}, {d.AVALU.iloc[0]}")
ax.set_title(d.PARAM.iloc[0])
ax.legend()
fig.tight_layout()
fig.savefig(png, dpi=100)
