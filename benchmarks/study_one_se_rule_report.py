"""Selection rules on the data of study_one_se_rule.py: among the (candidate, iteration)
pairs within k paired standard errors of the lowest held-out score, the smoothest ('tv')
or the one with the least data weight ('lc'); prints the truth PSNR of the lowest score,
of the rule's pick, and of the best pair visited, per case.

    python benchmarks/study_one_se_rule_report.py onese_101.json onese_102.json
"""
import json, sys, numpy as np
for f in sys.argv[1:]:
    res = json.load(open(f))
    for ks in ((0.5, "tv"), (1.0, "tv"), (2.0, "tv"), (1.0, "lc")):
        k, how = ks; out = []
        for case in res:
            rows = case["rows"]
            B = np.array([r["blocks"] for r in rows]); S = B.sum(1)
            i0 = int(np.argmin(S))
            d = B - B[i0]
            se = np.sqrt(B.shape[1] * d.var(1, ddof=1))
            ok = np.where(S - S[i0] <= k * se)[0]
            if how == "tv":
                i1 = ok[np.argmin([rows[i]["tv"] for i in ok])]
            else:
                i1 = ok[np.argmin([rows[i]["pt"][0] for i in ok])]
            best = max(r["psnr"] for r in rows)
            out.append((case["kind"][:4], case["dose"], round(rows[i0]["psnr"], 2), round(rows[i1]["psnr"], 2), round(best, 2), len(ok)))
        diffs = [o[3] - o[2] for o in out]
        print(f, ks, "mean diff %+.2f" % np.mean(diffs), "better", sum(x > 0.05 for x in diffs), "worse", sum(x < -0.05 for x in diffs))
        for o in out: print("   ", o)
