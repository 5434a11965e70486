"""Calibration and evaluation text: local files, the offline Wikipedia/Lee corpora, token windows.

Text sources
------------
* :func:`load_texts` reads ``.txt`` (documents separated by blank lines), ``.jsonl`` (one JSON
  object per line with a ``"text"`` field) and MediaWiki XML dumps (``.xml`` or ``.xml.bz2`` /
  ``.bz2``, streamed page by page, markup stripped by :func:`strip_wiki_markup`).
* :func:`gensim_wikipedia` and :func:`gensim_lee` extract text at run time from the test corpora
  that ship inside the PyPI package ``gensim`` (extra ``prunekit[demo]``); nothing is committed.
* :func:`hf_dataset_texts` loads wikitext-2 or C4 through Hugging Face ``datasets`` (extra
  ``prunekit[datasets]``, needs network on first use).

Token streams
-------------
Following the SparseGPT and Wanda evaluation code (Frantar & Alistarh 2023; Sun et al. 2023),
documents are joined with ``"\\n\\n"`` into one string and tokenised once without special tokens.
:func:`evaluation_tokens` returns that whole stream; :func:`calibration_windows` draws
``nsamples`` non-overlapping windows of ``seqlen`` tokens from it at seeded random positions.
"""

from __future__ import annotations

import bz2
import functools
import hashlib
import html
import importlib.util
import itertools
import json
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

__all__ = [
    "DOCUMENT_SEPARATOR",
    "HF_DATASETS",
    "WikiPage",
    "calibration_windows",
    "evaluation_tokens",
    "gensim_lee",
    "gensim_wikipedia",
    "hf_dataset_texts",
    "iter_mediawiki_pages",
    "load_texts",
    "strip_wiki_markup",
    "tokenize_texts",
]

logger = logging.getLogger(__name__)

#: Separator placed between documents before tokenising, as in the SparseGPT/Wanda wikitext code
#: (``"\n\n".join(data["text"])``).
DOCUMENT_SEPARATOR = "\n\n"

#: Default share of Wikipedia pages held out for evaluation by :func:`gensim_wikipedia`. A quarter
#: of the pages keeps well over 64 x 512 held-out SmolLM2 tokens while leaving three quarters
#: (over 128 x 512 tokens) for calibration; see docs/prunekit/data-and-models.md for the counts.
DEFAULT_EVAL_FRACTION = 0.25

_GENSIM_WIKI_GLOB = "enwiki-*-shortened.bz2"
_GENSIM_LEE = "lee_background.cor"


# --------------------------------------------------------------------------------------------
# MediaWiki markup
# --------------------------------------------------------------------------------------------

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_REF_SELF_CLOSING = re.compile(r"<ref\b[^>]*/>", re.IGNORECASE)
_REF_BLOCK = re.compile(r"<ref\b[^>]*>.*?</ref\s*>", re.IGNORECASE | re.DOTALL)
# Tags whose content is not prose: drop tag and content.
_DROP_BLOCKS = re.compile(
    r"<(math|gallery|timeline|score|syntaxhighlight|source|pre|code|chem|hiero|imagemap|noinclude)"
    r"\b[^>]*>.*?</\1\s*>",
    re.IGNORECASE | re.DOTALL,
)
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*?/?>")
# Innermost template / table / parser function: no nested opening brace inside.
_TEMPLATE = re.compile(r"\{\{(?:(?!\{\{|\}\}).)*\}\}", re.DOTALL)
_TABLE = re.compile(r"\{\|(?:(?!\{\||\|\}).)*\|\}", re.DOTALL)
# Innermost internal link: no "[[" inside.
_LINK = re.compile(r"\[\[((?:(?!\[\[|\]\]).)*)\]\]", re.DOTALL)
_EXTERNAL_LINK = re.compile(r"\[(?:https?:|ftp:|//)[^\s\]]*(?:\s+([^\]]*))?\]")
_BARE_URL = re.compile(r"https?://\S+")
_BOLD_ITALIC = re.compile(r"'{2,}")
_HEADING = re.compile(r"^\s*(={1,6}).*\1\s*$")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_SPACES = re.compile(r"[ \t\u00a0]+")
# Namespaces whose links are media or metadata rather than running text.
_DROPPED_LINK_NAMESPACES = frozenset(
    {"file", "image", "media", "category", "wikipedia", "wp", "help", "template", "portal", "wikt"}
)


_MIN_PARAGRAPH_LETTERS = 20


def _has_letters(text: str, count: int) -> bool:
    """Whether ``text`` has at least ``count`` letters (stops counting once it has)."""
    return sum(1 for _ in itertools.islice(filter(str.isalpha, text), count)) >= count


def _replace_until_stable(pattern: re.Pattern[str], repl: Any, text: str) -> str:
    """Apply ``pattern.sub`` until nothing changes, resolving nested constructs inside out."""
    while True:
        new = pattern.sub(repl, text)
        if new == text:
            return text
        text = new


def _link_text(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    namespace, colon, _rest = target.partition(":")
    if colon and namespace.strip().lower() in _DROPPED_LINK_NAMESPACES:
        return ""
    if colon and len(namespace.strip()) in (2, 3) and namespace.strip().islower():
        return ""  # interlanguage link such as [[de:Foo]]
    text = label if label else target
    # [[a|b|c]] only occurs in file links (dropped above); keep the last segment otherwise.
    return text.rsplit("|", 1)[-1]


def strip_wiki_markup(wikitext: str) -> str:
    """Turn MediaWiki source into plain paragraphs.

    Removes comments, ``<ref>`` footnotes, templates and parser functions (``{{...}}``, nested),
    tables (``{|...|}``), non-prose blocks (``<math>``, ``<gallery>``, ...), HTML tags (keeping
    their text), file/category/interlanguage links, external-link URLs, bold/italic quotes,
    headings, list and indentation lines, and magic words. Internal links become their shown
    text (``[[Paris|the capital]]`` -> ``the capital``). Paragraphs (runs of non-empty lines) are
    kept and joined by a blank line.

    This is a pragmatic cleaner for calibration and perplexity text, not a full MediaWiki
    parser: the aim is prose similar to the wikitext benchmark's, not a faithful rendering.

    Parameters
    ----------
    wikitext : str
        The page source as stored in the dump's ``<text>`` element (XML entities already decoded).

    Returns
    -------
    str
        Plain text, paragraphs separated by ``"\\n\\n"``; empty if the page has no prose.

    Examples
    --------
    >>> strip_wiki_markup("'''Paris''' is the [[capital city|capital]] of [[France]].{{cn}}")
    'Paris is the capital of France.'
    """
    text = _COMMENT.sub("", wikitext)
    text = _REF_SELF_CLOSING.sub("", text)
    text = _REF_BLOCK.sub("", text)
    text = _DROP_BLOCKS.sub("", text)
    text = _replace_until_stable(_TEMPLATE, "", text)
    text = _replace_until_stable(_TABLE, "", text)
    text = _replace_until_stable(_LINK, _link_text, text)
    text = _EXTERNAL_LINK.sub(lambda m: m.group(1) or "", text)
    text = _BARE_URL.sub("", text)
    text = _HTML_TAG.sub("", text)
    text = html.unescape(text)
    text = _BOLD_ITALIC.sub("", text)
    text = _MAGIC_WORD.sub("", text)

    paragraphs: list[str] = []
    current: list[str] = []
    for raw in text.split("\n"):
        line = _SPACES.sub(" ", raw).strip()
        is_structure = (
            not line
            or _HEADING.match(line) is not None
            or line[0] in "*#:;|!{}"
            or line.startswith("----")
        )
        if is_structure:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(line)
    if current:
        paragraphs.append(" ".join(current))
    # A "paragraph" of a few characters is debris (e.g. leftover punctuation of a template).
    paragraphs = [p for p in paragraphs if _has_letters(p, _MIN_PARAGRAPH_LETTERS)]
    return DOCUMENT_SEPARATOR.join(paragraphs)


@dataclass(frozen=True)
class WikiPage:
    """One article from a MediaWiki dump.

    Attributes
    ----------
    title : str
        The page title, as in the dump.
    text : str
        Plain text after :func:`strip_wiki_markup`.
    """

    title: str
    text: str


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _open_maybe_bz2(path: Path) -> Any:
    with path.open("rb") as probe:
        magic = probe.read(3)
    return bz2.open(path, "rb") if magic == b"BZh" else path.open("rb")


def iter_mediawiki_pages(path: str | os.PathLike[str]) -> Iterator[WikiPage]:
    """Stream the articles of a MediaWiki XML export (plain or bz2-compressed).

    Pages outside the main namespace (``<ns>`` other than 0), redirects and pages left without
    prose after :func:`strip_wiki_markup` are skipped. Memory stays bounded: each ``<page>``
    element is cleared once read.

    Parameters
    ----------
    path : str or os.PathLike
        A ``pages-articles`` dump, ``.xml`` or ``.xml.bz2`` (detected from the file's magic bytes).

    Yields
    ------
    WikiPage
        Title and plain text of each article, in dump order.

    Raises
    ------
    ValueError
        If the file is not well-formed XML.

    Examples
    --------
    >>> pages = list(iter_mediawiki_pages("enwiki-latest-pages-articles.xml.bz2"))  # doctest: +SKIP
    """
    path = Path(path)
    title = ""
    namespace = "0"
    text = ""
    redirect = False
    with _open_maybe_bz2(path) as stream:
        try:
            for event, element in ET.iterparse(stream, events=("start", "end")):
                name = _local(element.tag)
                if event == "start":
                    if name == "page":
                        title, namespace, text, redirect = "", "0", "", False
                    continue
                if name == "title":
                    title = element.text or ""
                elif name == "ns":
                    namespace = (element.text or "0").strip()
                elif name == "redirect":
                    redirect = True
                elif name == "text":
                    text = element.text or ""
                elif name == "page":
                    element.clear()
                    is_redirect = redirect or text.lstrip().upper().startswith("#REDIRECT")
                    if namespace != "0" or is_redirect:
                        continue
                    plain = strip_wiki_markup(text)
                    if plain:
                        yield WikiPage(title=title, text=plain)
        except ET.ParseError as exc:
            raise ValueError(
                f"path {str(path)!r} is not a well-formed MediaWiki XML dump: {exc}"
            ) from exc


# --------------------------------------------------------------------------------------------
# Local files
# --------------------------------------------------------------------------------------------

_TEXT_SUFFIXES = {".txt": "txt", ".jsonl": "jsonl", ".xml": "mediawiki", ".bz2": "mediawiki"}


def _read_txt(path: Path) -> list[str]:
    content = path.read_text(encoding="utf-8")
    blocks = re.split(r"\n[ \t]*\n", content.replace("\r\n", "\n"))
    return [block.strip() for block in blocks if block.strip()]


def _read_jsonl(path: Path) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}: line {lineno} is not valid JSON ({exc.msg}); each line of a .jsonl "
                    'file must be one JSON object with a "text" field'
                ) from exc
            if not isinstance(record, dict) or "text" not in record:
                raise ValueError(
                    f'{path}: line {lineno} has no "text" field; each line of a .jsonl file must '
                    f'be a JSON object like {{"text": "..."}}, got {line.strip()[:80]!r}'
                )
            value = record["text"]
            if not isinstance(value, str):
                raise ValueError(
                    f'{path}: line {lineno}: "text" must be a string, got {type(value).__name__}'
                )
            if value.strip():
                texts.append(value)
    return texts


def load_texts(path: str | os.PathLike[str]) -> list[str]:
    """Read documents from a local text file.

    Formats, chosen by the file name's suffix:

    * ``.txt`` -- documents are separated by one or more blank lines (a paragraph per document,
      like the raw wikitext files); surrounding whitespace is stripped.
    * ``.jsonl`` -- one JSON object per line with a string ``"text"`` field (the C4 / RedPajama
      layout); blank lines are skipped, other fields ignored.
    * ``.xml`` / ``.bz2`` -- a MediaWiki XML export; one document per article, markup stripped
      (see :func:`iter_mediawiki_pages`).

    Parameters
    ----------
    path : str or os.PathLike
        The file to read (UTF-8).

    Returns
    -------
    list of str
        The non-empty documents, in file order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the suffix is not supported, a ``.jsonl`` line is malformed (the message names the
        line number), or the file holds no text.

    Examples
    --------
    >>> docs = load_texts("calibration.jsonl")  # doctest: +SKIP
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    file = Path(path)
    suffix = file.suffix.lower()
    kind = _TEXT_SUFFIXES.get(suffix)
    if kind is None:
        raise ValueError(
            f"path {str(path)!r} has unsupported suffix {suffix!r}; allowed: "
            f"{sorted(_TEXT_SUFFIXES)} (.txt: blank-line separated documents, .jsonl: "
            '{"text": ...} per line, .xml/.bz2: MediaWiki dump)'
        )
    if not file.is_file():
        raise FileNotFoundError(f"path {str(path)!r} does not exist or is not a file")
    if kind == "txt":
        texts = _read_txt(file)
    elif kind == "jsonl":
        texts = _read_jsonl(file)
    else:
        texts = [page.text for page in iter_mediawiki_pages(file)]
    if not texts:
        raise ValueError(f"path {str(path)!r} contains no text")
    logger.info("read %d documents from %s", len(texts), file)
    return texts


# --------------------------------------------------------------------------------------------
# Offline corpora shipped with gensim
# --------------------------------------------------------------------------------------------


def _gensim_test_data() -> Path:
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the offline Wikipedia and Lee corpora come from the PyPI package 'gensim'; "
            "install it with: pip install 'prunekit[demo]'"
        )
    # find_spec locates the installed package without importing gensim (and its scipy stack).
    folder = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"gensim is installed but has no test_data folder at {folder}; reinstall gensim>=4.3"
        )
    return folder


def _gensim_wiki_dump() -> Path:
    folder = _gensim_test_data()
    dumps = sorted(folder.glob(_GENSIM_WIKI_GLOB))
    if not dumps:
        raise FileNotFoundError(
            f"no {_GENSIM_WIKI_GLOB} in {folder}; reinstall gensim>=4.3 (prunekit[demo])"
        )
    return dumps[-1]


@functools.lru_cache(maxsize=2)
def _cached_pages(path: str, size: int, mtime_ns: int) -> tuple[WikiPage, ...]:
    # size and mtime are part of the key so a replaced file is re-read.
    return tuple(iter_mediawiki_pages(path))


def _page_is_heldout(title: str, eval_fraction: float) -> bool:
    # A hash of the title, not the page's position, decides the split: it is the same for any
    # order or subset of pages and does not depend on Python's randomised str hash.
    digest = hashlib.sha256(title.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < eval_fraction


def gensim_wikipedia(
    split: Literal["calibration", "evaluation"],
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
) -> list[str]:
    """English Wikipedia articles from the dump bundled with gensim, split by page.

    The file ``gensim/test/test_data/enwiki-*-shortened.bz2`` (a few hundred real articles)
    is parsed with :func:`iter_mediawiki_pages`. A page belongs to the evaluation split when the
    first 64 bits of ``sha256(title)``, read as a fraction of 2**64, are below
    ``eval_fraction``; otherwise to the calibration split. The split is therefore deterministic,
    disjoint by page, and independent of page order.

    Parameters
    ----------
    split : {"calibration", "evaluation"}
        Which part to return.
    eval_fraction : float, default 0.25
        Expected share of pages held out for evaluation, in (0, 1).

    Returns
    -------
    list of str
        Article texts of the requested split, in dump order.

    Raises
    ------
    ValueError
        If ``split`` or ``eval_fraction`` is invalid.
    ModuleNotFoundError
        If gensim is not installed (extra ``prunekit[demo]``).

    Examples
    --------
    >>> calib = gensim_wikipedia("calibration")  # doctest: +SKIP
    >>> heldout = gensim_wikipedia("evaluation")  # doctest: +SKIP
    """
    if split not in ("calibration", "evaluation"):
        raise ValueError(f"split must be 'calibration' or 'evaluation', got {split!r}")
    if not isinstance(eval_fraction, int | float) or not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be a number in (0, 1), got {eval_fraction!r}")
    dump = _gensim_wiki_dump()
    stat = dump.stat()
    pages = _cached_pages(str(dump), stat.st_size, stat.st_mtime_ns)
    want_heldout = split == "evaluation"
    texts = [p.text for p in pages if _page_is_heldout(p.title, eval_fraction) == want_heldout]
    logger.info("gensim Wikipedia %s split: %d of %d pages", split, len(texts), len(pages))
    return texts


def gensim_lee() -> list[str]:
    """The Lee background corpus bundled with gensim (out-of-domain news text).

    ``gensim/test/test_data/lee_background.cor`` holds 300 short Australian news articles
    (Lee, Pincombe & Welsh 2005), one per line.

    Returns
    -------
    list of str
        The non-empty documents, in file order.

    Raises
    ------
    ModuleNotFoundError
        If gensim is not installed (extra ``prunekit[demo]``).

    Examples
    --------
    >>> lee = gensim_lee()  # doctest: +SKIP
    """
    path = _gensim_test_data() / _GENSIM_LEE
    if not path.is_file():
        raise FileNotFoundError(f"no {_GENSIM_LEE} in {path.parent}; reinstall gensim>=4.3")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line.strip() for line in lines if line.strip()]


# --------------------------------------------------------------------------------------------
# Hugging Face datasets (optional)
# --------------------------------------------------------------------------------------------

#: Datasets reachable through :func:`hf_dataset_texts`: name -> description.
HF_DATASETS: dict[str, str] = {
    "wikitext2": "wikitext-2-raw-v1 (Merity et al. 2016), the SparseGPT/Wanda perplexity set",
    "c4": "allenai/c4 English, first train / validation shard (Raffel et al. 2020)",
}

_C4_SHARDS = {
    "train": "en/c4-train.00000-of-01024.json.gz",
    "validation": "en/c4-validation.00000-of-00008.json.gz",
}


def hf_dataset_texts(name: str, split: str) -> list[str]:
    """Documents of wikitext-2 or C4 through Hugging Face ``datasets`` (needs network once).

    The loaders match the SparseGPT/Wanda code: wikitext-2 is the raw v1 configuration (its
    lines are returned as documents, and :func:`evaluation_tokens` joins them with ``"\\n\\n"``
    exactly as the papers do); C4 uses the first English train shard or validation shard.

    Parameters
    ----------
    name : {"wikitext2", "c4"}
        Which dataset (see :data:`HF_DATASETS`).
    split : str
        ``"train"``, ``"validation"`` or (wikitext2 only) ``"test"``.

    Returns
    -------
    list of str
        Non-empty documents.

    Raises
    ------
    ValueError
        If ``name`` or ``split`` is unknown.
    ModuleNotFoundError
        If ``datasets`` is missing (extra ``prunekit[datasets]``).

    Examples
    --------
    >>> test = hf_dataset_texts("wikitext2", "test")  # doctest: +SKIP
    """
    if name not in HF_DATASETS:
        raise ValueError(f"name must be one of {sorted(HF_DATASETS)}, got {name!r}")
    allowed = ("train", "validation", "test") if name == "wikitext2" else tuple(_C4_SHARDS)
    if split not in allowed:
        raise ValueError(f"split for {name!r} must be one of {list(allowed)}, got {split!r}")
    try:
        import datasets
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "hf_dataset_texts needs the Hugging Face 'datasets' package; install it with: "
            "pip install 'prunekit[datasets]'"
        ) from exc
    if name == "wikitext2":
        data = datasets.load_dataset("wikitext", "wikitext-2-raw-v1", split=split)
    else:
        data = datasets.load_dataset(
            "allenai/c4", data_files={split: _C4_SHARDS[split]}, split=split
        )
    return [str(t) for t in data["text"] if str(t).strip()]


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of documents (list of str), got a single str")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must contain only str documents")
    if not texts:
        raise ValueError("texts must contain at least one document, got an empty sequence")


def tokenize_texts(tokenizer: Any, texts: Sequence[str]) -> torch.Tensor:
    """Tokenise documents joined by :data:`DOCUMENT_SEPARATOR` into one 1-D id stream.

    No special tokens are added (no BOS/EOS per window), so every position of the stream is
    text; this matches the papers' single ``tokenizer("\\n\\n".join(texts))`` call up to the one
    leading BOS some tokenizers would add.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
        Any Hugging Face tokenizer.
    texts : sequence of str
        The documents.

    Returns
    -------
    torch.LongTensor
        Shape ``(n_tokens,)``.

    Examples
    --------
    >>> ids = tokenize_texts(tokenizer, ["first doc", "second doc"])  # doctest: +SKIP
    """
    _check_texts(texts)
    joined = DOCUMENT_SEPARATOR.join(texts)
    # verbose=False: the stream is longer than model_max_length on purpose; it is cut later.
    encoded = tokenizer(joined, add_special_tokens=False, verbose=False)["input_ids"]
    return torch.tensor(encoded, dtype=torch.long)


def evaluation_tokens(tokenizer: Any, texts: Sequence[str]) -> torch.Tensor:
    """The whole evaluation text as one token row, ready for windowed perplexity.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
        The model's tokenizer.
    texts : sequence of str
        Held-out documents, joined with ``"\\n\\n"`` as in the SparseGPT/Wanda wikitext code.

    Returns
    -------
    torch.LongTensor
        Shape ``(1, n_tokens)``.

    Raises
    ------
    ValueError
        If ``texts`` is empty or tokenises to nothing.

    Examples
    --------
    >>> ids = evaluation_tokens(tokenizer, gensim_wikipedia("evaluation"))  # doctest: +SKIP
    >>> ids.shape  # doctest: +SKIP
    torch.Size([1, 96000])
    """
    ids = tokenize_texts(tokenizer, texts)
    if ids.numel() == 0:
        raise ValueError("texts tokenise to zero tokens; give non-empty evaluation documents")
    return ids.unsqueeze(0)


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def calibration_windows(
    tokenizer: Any,
    texts: Sequence[str],
    nsamples: int,
    seqlen: int,
    seed: int,
) -> torch.Tensor:
    """Draw ``nsamples`` non-overlapping windows of ``seqlen`` tokens at seeded random places.

    The documents are tokenised into one stream of ``n`` tokens (:func:`tokenize_texts`). Let
    ``slack = n - nsamples * seqlen``. Sorted offsets ``g_1 <= ... <= g_nsamples`` are drawn
    uniformly from ``[0, slack]`` and window ``i`` starts at ``g_i + (i - 1) * seqlen``; this
    places the windows uniformly at random among all non-overlapping placements (stars and
    bars), so no calibration token is used twice, unlike the papers' independent draws
    (SparseGPT, Frantar & Alistarh 2023, sample C4/wikitext windows independently). The windows
    are then returned in a seeded random order.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
        The model's tokenizer.
    texts : sequence of str
        Calibration documents.
    nsamples : int
        Number of windows (the papers use 128).
    seqlen : int
        Tokens per window.
    seed : int
        Seed of a private ``torch.Generator``; the global RNG is untouched.

    Returns
    -------
    torch.LongTensor
        Shape ``(nsamples, seqlen)``.

    Raises
    ------
    ValueError
        If ``nsamples``/``seqlen`` are not positive ints, ``seed`` is not an int, or the text has
        fewer than ``nsamples * seqlen`` tokens (the message gives the available count).

    Examples
    --------
    >>> calib = calibration_windows(tok, gensim_wikipedia("calibration"), 128, 512, seed=0)
    ... # doctest: +SKIP
    >>> calib.shape  # doctest: +SKIP
    torch.Size([128, 512])
    """
    nsamples = _check_positive_int("nsamples", nsamples)
    seqlen = _check_positive_int("seqlen", seqlen)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    _check_texts(texts)
    stream = tokenize_texts(tokenizer, texts)
    needed = nsamples * seqlen
    available = int(stream.numel())
    if available < needed:
        raise ValueError(
            f"too little calibration text: nsamples={nsamples} x seqlen={seqlen} needs {needed} "
            f"tokens but the texts give {available}; lower nsamples or seqlen or add text"
        )
    generator = torch.Generator().manual_seed(seed)
    slack = available - needed
    offsets = torch.sort(torch.randint(0, slack + 1, (nsamples,), generator=generator)).values
    starts = offsets + torch.arange(nsamples) * seqlen
    order = torch.randperm(nsamples, generator=generator)
    starts = starts[order]
    index = starts.unsqueeze(1) + torch.arange(seqlen).unsqueeze(0)
    return stream[index]
