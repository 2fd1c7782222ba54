"""Validation diagnostic behind the ``tagged`` layout: a logistic probe on frozen MiniLM mean-pooled features.

Fitted on n sampled training prompts (seed 0), scored on the first 300 validation prompts, for
TALLRec's layout (``prompt``) and every title tagged liked/disliked (``tagged``). Never reads the
test file. Run from the repository root: ``python benchmarks/results/tallrec/layout_probe.py``.
Output of the run that chose the layout is in ``layout_probe.txt``.
"""
import sys, numpy as np, torch
sys.path.insert(0, 'benchmarks')
import tallrec as T
from pathlib import Path
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from coldstart_peft.backbone import load_backbone, load_tokenizer
torch.set_num_threads(1)
names=T.titles(Path(T.DEFAULT_ITEMS)); tr=T.rebuild(Path(T.DEFAULT_DATA)/'baseline/movielens/train.csv.gz',names)
va=T.read_json_gz(Path(T.DEFAULT_DATA)/'data/movie/valid.json.gz')[:300]
m=load_backbone(); tok=load_tokenizer()
def tagged(p):
    import re
    mt=T.PROMPT.match(p['input']); l,d,t=mt.groups()
    L=T.TITLES.findall(l); D=T.TITLES.findall(d)
    return " ".join([f"liked {x}." for x in L]+[f"disliked {x}." for x in D])+f" target: {t}"
fmts={'prompt':lambda p:p['input'],'tagged':tagged}
def emb(texts):
    out=[]
    with torch.no_grad():
        for i in range(0,len(texts),32):
            e=tok(texts[i:i+32],padding=True,truncation=True,max_length=160,return_tensors='pt')
            h=m(**e).last_hidden_state; w=e['attention_mask'].unsqueeze(-1).float()
            out.append(((h*w).sum(1)/w.sum(1)).numpy())
    return np.concatenate(out)
yv=[p['output']=='Yes.' for p in va]
for n in (64,256):
  s=T.sample(tr,n,0,False); ys=[p['output']=='Yes.' for p in s]
  for k,f in fmts.items():
    Xs=emb([f(p) for p in s]); Xv=emb([f(p) for p in va])
    for C in (0.1,1,10):
        clf=LogisticRegression(C=C,max_iter=2000).fit(Xs,ys); print(n,k,C,round(roc_auc_score(yv,clf.decision_function(Xv)),4),flush=True)
