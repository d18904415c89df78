"""Free-text columns: how the profile tells them from categories and IDs, and how a Pipeline turns
them into features.

Text is detected by shape: long or many-word values, mostly unique, made of words (letters
separated by spaces). Word structure is what keeps hashes, URLs and base64 blobs (long, unique,
one token) out, and uniqueness what keeps long repeated labels ("Oil paint on canvas") in the
categories.

`TextFeatures` is one transformer per text column, fitted inside the Pipeline (so within each
cross-validation fold, never on validation rows). Two modes:
- sparse (linear models, which thrive on many weak sparse features): TF-IDF of word 1-2-grams
  and of character 2-4-grams (inside word boundaries: robust to typos and inflections);
- reduced (trees and the rest): word TF-IDF -> TruncatedSVD components, plus the log length in
  characters and words, dense and few enough to sit beside the tabular columns in gradient boosting.
Everything inside is a plain scikit-learn type, so skops saves it once this class is trusted.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

# A word: two or more letters (any script). Digits and punctuation do not make a word.
WORD = re.compile(r"[^\W\d_]{2,}")
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"  # the same words, as the vectorizers see them
_PUNCT = "\"'()[]{}<>.,;:!?-*_/\\"
MIN_WORDY_SHARE = 0.6  # share of sampled values with at least two words
MIN_UNIQUE_FRAC = 0.3
CHAR_DOC_CHARS = 500  # characters of a document the char n-grams read: their cost grows with length (2000 made
# a 2k-review fold take 7 s on a loaded 2-core machine), and on long texts the words carry the signal


def _n_words(value: str) -> int:
    """Space-separated tokens that are words once punctuation is stripped ("Hello," counts; a hash,
    a URL or "B000J0LSBG" does not, even though letters run inside them)."""
    return sum(1 for tok in value.split() if len(w := tok.strip(_PUNCT)) >= 2 and w.isalpha())


def word_facts(sample: list[str]) -> dict[str, float]:
    """Word structure of sampled string values: mean words per value and the share with >= 2 words."""
    counts = [_n_words(x) for x in sample]
    return {"avg_letter_words": float(np.mean(counts)) if counts else 0.0,
            "wordy_frac": float(np.mean([c >= 2 for c in counts])) if counts else 0.0}


def is_free_text(facts: dict[str, Any], unique_frac: float) -> bool:
    """Long (5+ words or 40+ characters on average), mostly unique, and made of words."""
    long_enough = facts.get("avg_words", 0.0) >= 5 or facts.get("avg_len", 0.0) >= 40
    wordy = facts.get("wordy_frac", 1.0) >= MIN_WORDY_SHARE and facts.get("avg_letter_words", 5.0) >= 3
    return long_enough and wordy and unique_frac >= MIN_UNIQUE_FRAC


def as_documents(X) -> list[str]:
    """The first column of X as strings; missing -> the empty string."""
    col = X.iloc[:, 0] if hasattr(X, "iloc") else np.asarray(X, dtype=object).reshape(len(X), -1)[:, 0]
    return pd.Series(col, dtype=object).fillna("").astype(str).tolist()


class TextFeatures(TransformerMixin, BaseEstimator):
    """One text column -> sparse word + character TF-IDF (`components=0`) or, with `components`
    > 0, that many SVD components of the word TF-IDF plus log length in characters and words."""

    def __init__(self, max_words: int = 20000, max_chars: int = 20000, components: int = 0):
        self.max_words = max_words
        self.max_chars = max_chars
        self.components = components

    def _vectorizer(self, kind: str, min_df: int):
        from sklearn.feature_extraction.text import TfidfVectorizer

        if kind == "word":
            return TfidfVectorizer(ngram_range=(1, 2), max_features=self.max_words, min_df=min_df, sublinear_tf=True,
                                   token_pattern=TOKEN_PATTERN)
        return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), max_features=self.max_chars, min_df=min_df,
                               sublinear_tf=True)

    def _fit_vectorizer(self, kind: str, docs: list[str]):
        """(the fitted vectorizer, its TF-IDF of `docs`): min_df=2 (a term seen once teaches nothing),
        falling back to every term on tiny data and to (None, None) when the documents hold no term
        at all (every value empty)."""
        for min_df in (2, 1):
            vectorizer = self._vectorizer(kind, min_df)
            try:
                return vectorizer, vectorizer.fit_transform(docs)
            except ValueError:
                continue
        return None, None

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        # The Pipeline calls this in every fold: each document is tokenised once here. fit() then
        # transform() tokenised the training documents twice (three times for the SVD mode), and
        # tokenising is most of a text candidate's cost (char n-grams on 4.6k tweets: 1.9 s to fit,
        # 1.7 s more to transform on a loaded 2-core machine), enough to push a text run's only
        # real candidate out of a short search budget.
        docs = as_documents(X)
        self.feature_names_in_ = np.asarray(getattr(X, "columns", ["text"]), dtype=object)[:1]
        self.n_features_in_ = 1
        self.word_, words = self._fit_vectorizer("word", docs)
        self.char_, chars = (None, None) if self.components else self._fit_vectorizer("char", _char_docs(docs))
        self.svd_ = None
        if self.components and self.word_ is not None:
            from sklearn.decomposition import TruncatedSVD

            k = min(self.components, words.shape[1] - 1, len(docs) - 1)
            if k >= 1:
                self.svd_ = TruncatedSVD(n_components=k, n_iter=3, random_state=0).fit(words)
        return self._features(docs, words, chars)

    def transform(self, X):
        docs = as_documents(X)
        words = self.word_.transform(docs) if self.word_ is not None else None
        chars = self.char_.transform(_char_docs(docs)) if self.char_ is not None else None
        return self._features(docs, words, chars)

    def _features(self, docs: list[str], words, chars):
        """The output columns from the documents' word and character TF-IDF (None: no vocabulary)."""
        from scipy import sparse

        if self.components:
            lengths = np.column_stack([np.log1p([len(d) for d in docs]), np.log1p([len(WORD.findall(d)) for d in docs])])
            if self.svd_ is None:
                return lengths
            return np.hstack([self.svd_.transform(words), lengths])
        blocks = [b for b in (words, chars) if b is not None]
        if not blocks:  # nothing to learn from: one all-zero column keeps the shapes valid
            return sparse.csr_matrix((len(docs), 1))
        return sparse.hstack(blocks, format="csr")

    def get_feature_names_out(self, input_features=None):
        col = str((input_features if input_features is not None else self.feature_names_in_)[0])
        if self.components:
            svd = [f"{col}__svd{i}" for i in range(self.svd_.n_components)] if self.svd_ is not None else []
            return np.asarray(svd + [f"{col}__log_chars", f"{col}__log_words"], dtype=object)
        names = []
        if self.word_ is not None:
            names += [f"{col}__w_{t}" for t in self.word_.get_feature_names_out()]
        if self.char_ is not None:
            names += [f"{col}__c_{t}" for t in self.char_.get_feature_names_out()]
        return np.asarray(names or [f"{col}__empty"], dtype=object)


    # skops stores a fitted vectorizer's vocabulary_ dict as one node per term: 26k terms took 17 s
    # to save and 6 s to load. Saved instead: the terms as one string (in column order) and the idf
    # array; the vectorizers are rebuilt from them on load.
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ hands back __dict__ itself
        for key in ("word_", "char_"):
            vec = state.get(key)
            if vec is not None:
                state[key] = {"terms": "\n".join(vec.get_feature_names_out().tolist()), "idf": vec.idf_}
        return state

    def __setstate__(self, state):
        state = dict(state)
        for key, kind in (("word_", "word"), ("char_", "char")):
            packed = state.get(key)
            if isinstance(packed, dict):
                state[key] = _rebuilt(self._vectorizer_for(state, kind), packed)
        super().__setstate__(state)

    @staticmethod
    def _vectorizer_for(state: dict[str, Any], kind: str):
        probe = TextFeatures(**{k: state[k] for k in ("max_words", "max_chars", "components") if k in state})
        return probe._vectorizer(kind, 1)


def _char_docs(docs: list[str]) -> list[str]:
    return [d[:CHAR_DOC_CHARS] for d in docs]


def _rebuilt(vectorizer, packed: dict[str, Any]):
    """A fitted TfidfVectorizer from its terms and idf weights (what fit would have set)."""
    vectorizer.vocabulary_ = {t: i for i, t in enumerate(packed["terms"].split("\n"))}
    vectorizer.fixed_vocabulary_ = False
    vectorizer.idf_ = np.asarray(packed["idf"], dtype=float)
    return vectorizer


def text_transformer(sparse_features: bool) -> TextFeatures:
    """Sparse TF-IDF for the linear family; 48 SVD components (+ lengths) for every other one."""
    return TextFeatures() if sparse_features else TextFeatures(max_words=5000, components=48)
