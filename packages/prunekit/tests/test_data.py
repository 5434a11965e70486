"""Text sources and token windows (prunekit.data)."""

from __future__ import annotations

import bz2
import itertools
import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import WORDS, make_tokenizer, random_text
from prunekit.data import (
    DOCUMENT_SEPARATOR,
    calibration_windows,
    evaluation_tokens,
    gensim_lee,
    gensim_wikipedia,
    iter_mediawiki_pages,
    load_texts,
    strip_wiki_markup,
    tokenize_texts,
)

# A hand-written MediaWiki export: two articles, a redirect, a talk page (namespace 1).
_DUMP = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">
  <siteinfo><sitename>Wikipedia</sitename></siteinfo>
  <page>
    <title>Alpha</title>
    <ns>0</ns>
    <id>1</id>
    <revision><id>11</id><text xml:space="preserve">{{Infobox thing
| name = Alpha {{nested|x}}
}}
'''Alpha''' is the first [[Greek alphabet|letter]] of the [[Greek alphabet]].
&lt;ref&gt;A source.&lt;/ref&gt; It is old.{{citation needed}}

== History ==
The letter came from [[Phoenicia]]n writing,
as [http://example.org the site] says.&lt;ref name="b" /&gt;
[[File:Alpha.svg|thumb|A picture with a [[link]] inside]]
{| class="wikitable"
| cell one || cell two
|}
* a list item that is dropped because lists are not prose
&lt;!-- a hidden comment --&gt;
[[Category:Letters]]
[[de:Alpha]]</text></revision>
  </page>
  <page>
    <title>Beta</title>
    <ns>0</ns>
    <id>2</id>
    <revision><id>12</id><text xml:space="preserve">'''Beta''' is the second letter,
worth &amp;nbsp;two in the Greek numeral system.</text></revision>
  </page>
  <page>
    <title>Old Beta</title>
    <ns>0</ns>
    <id>3</id>
    <redirect title="Beta" />
    <revision><id>13</id><text xml:space="preserve">#REDIRECT [[Beta]]</text></revision>
  </page>
  <page>
    <title>Talk:Alpha</title>
    <ns>1</ns>
    <id>4</id>
    <revision><id>14</id><text xml:space="preserve">Discussion that is long enough
to count as a paragraph of prose.</text></revision>
  </page>
</mediawiki>
"""

# What strip_wiki_markup must leave of the two articles, written out by hand from _DUMP.
_ALPHA = (
    "Alpha is the first letter of the Greek alphabet. It is old.\n\n"
    "The letter came from Phoenician writing, as the site says."
)
_BETA = "Beta is the second letter, worth two in the Greek numeral system."


@pytest.fixture
def dump_bz2(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-pages-articles.xml.bz2"
    path.write_bytes(bz2.compress(_DUMP.encode("utf-8")))
    return path


def test_mediawiki_dump_pages_and_markup(dump_bz2: Path) -> None:
    pages = list(iter_mediawiki_pages(dump_bz2))
    # The redirect and the Talk page (namespace 1) are skipped.
    assert [p.title for p in pages] == ["Alpha", "Beta"]
    assert pages[0].text == _ALPHA
    # &nbsp; became a plain space.
    assert pages[1].text == _BETA
    for page in pages:
        for debris in ("{{", "}}", "[[", "]]", "<ref", "'''", "==", "http", "wikitable"):
            assert debris not in page.text


def test_load_texts_bz2_and_plain_xml_agree(dump_bz2: Path, tmp_path: Path) -> None:
    plain = tmp_path / "tiny.xml"
    plain.write_text(_DUMP, encoding="utf-8")
    assert load_texts(dump_bz2) == load_texts(plain) == [_ALPHA, _BETA]


def test_strip_wiki_markup_docstring_case() -> None:
    text = "'''Paris''' is the [[capital city|capital]] of [[France]].{{cn}}"
    assert strip_wiki_markup(text) == "Paris is the capital of France."


def test_strip_wiki_markup_nested_templates_and_tables() -> None:
    # Templates nest three deep and contain a table; all of it goes, the sentence stays.
    text = "{{a|{{b|{{c}}}}|\n{| x\n|y\n|}\n}}A sentence that survives the cleaning step."
    assert strip_wiki_markup(text) == "A sentence that survives the cleaning step."


def test_malformed_dump_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text("<mediawiki><page><title>x</title>", encoding="utf-8")
    with pytest.raises(ValueError, match="well-formed"):
        load_texts(path)


def test_txt_documents_are_blank_line_separated(tmp_path: Path) -> None:
    path = tmp_path / "docs.txt"
    path.write_text("first doc\nline two\n\n\n  \nsecond doc\n\nthird\n", encoding="utf-8")
    assert load_texts(path) == ["first doc\nline two", "second doc", "third"]


def test_jsonl_reads_text_field(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    rows = [{"text": "one", "meta": 1}, {"text": "two"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert load_texts(path) == ["one", "two"]


@pytest.mark.parametrize(
    ("lines", "bad_line", "match"),
    [
        (['{"text": "ok"}', "{not json"], 2, "not valid JSON"),
        (['{"text": "ok"}', "", '{"body": "x"}'], 3, 'no "text" field'),
        (['{"text": 5}'], 1, "must be a string"),
        (['["text"]'], 1, 'no "text" field'),
    ],
)
def test_jsonl_errors_name_the_line(
    tmp_path: Path, lines: list[str], bad_line: int, match: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"line {bad_line}\\b.*{match}|line {bad_line}: .*{match}"):
        load_texts(path)


def test_load_texts_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unsupported suffix '\.csv'"):
        load_texts(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError):
        load_texts(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n \n", encoding="utf-8")
    with pytest.raises(ValueError, match="contains no text"):
        load_texts(empty)
    with pytest.raises(TypeError, match="path must be"):
        load_texts(3)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ windows


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return make_tokenizer()


def _docs(n_words: int, seed: int) -> list[str]:
    return random_text(n_words, seed).strip().split("\n\n")


def test_tokenize_joins_with_separator_and_adds_no_specials(tokenizer: object) -> None:
    # The word-level tokenizer maps word i of WORDS to id i + 3 and ignores whitespace,
    # so the stream is exactly the words' ids in order (no BOS id 0 / EOS id 1).
    ids = tokenize_texts(tokenizer, ["w0 w1", "w2"])
    assert ids.tolist() == [3, 4, 5]
    assert DOCUMENT_SEPARATOR == "\n\n"
    assert evaluation_tokens(tokenizer, ["w0 w1", "w2"]).tolist() == [[3, 4, 5]]


def test_calibration_windows_are_seeded_slices_of_the_stream(tokenizer: object) -> None:
    docs = _docs(2000, seed=5)
    stream = tokenize_texts(tokenizer, docs)
    a = calibration_windows(tokenizer, docs, nsamples=16, seqlen=64, seed=0)
    b = calibration_windows(tokenizer, docs, nsamples=16, seqlen=64, seed=0)
    c = calibration_windows(tokenizer, docs, nsamples=16, seqlen=64, seed=1)
    assert a.shape == (16, 64)
    assert a.dtype == torch.long
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # Every window is a contiguous slice of the stream, and windows do not overlap.
    starts = []
    for row in a:
        matches = [
            s for s in range(stream.numel() - 63) if torch.equal(stream[s : s + 64], row)
        ]
        assert matches, "window is not a slice of the token stream"
        starts.append(matches[0])
    starts.sort()
    assert all(later - earlier >= 64 for earlier, later in itertools.pairwise(starts))


def test_calibration_windows_exact_fit_tiles_the_stream(tokenizer: object) -> None:
    # With exactly nsamples * seqlen tokens the only non-overlapping placement is the tiling.
    words = " ".join(WORDS[i % len(WORDS)] for i in range(4 * 10))
    stream = tokenize_texts(tokenizer, [words])
    windows = calibration_windows(tokenizer, [words], nsamples=4, seqlen=10, seed=3)
    assert sorted(windows.tolist()) == sorted(stream.view(4, 10).tolist())


def test_calibration_windows_too_little_text(tokenizer: object) -> None:
    docs = _docs(100, seed=2)
    with pytest.raises(ValueError, match=r"nsamples=4 x seqlen=32 needs 128 tokens.*give 100\b"):
        calibration_windows(tokenizer, docs, nsamples=4, seqlen=32, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nsamples": 0}, "nsamples must be a positive int"),
        ({"seqlen": 1.5}, "seqlen must be a positive int"),
        ({"seed": "0"}, "seed must be an int"),
    ],
)
def test_calibration_windows_validates_arguments(
    tokenizer: object, kwargs: dict[str, object], match: str
) -> None:
    args: dict[str, object] = {"nsamples": 2, "seqlen": 8, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        calibration_windows(tokenizer, ["w0 w1"], **args)  # type: ignore[arg-type]


def test_texts_must_be_documents(tokenizer: object) -> None:
    with pytest.raises(TypeError, match="single str"):
        evaluation_tokens(tokenizer, "w0 w1")
    with pytest.raises(ValueError, match="at least one document"):
        evaluation_tokens(tokenizer, [])


# ------------------------------------------------------------------------------ gensim corpora


def test_gensim_wikipedia_split_is_disjoint_deterministic_and_complete() -> None:
    pytest.importorskip("gensim")
    calib = gensim_wikipedia("calibration")
    heldout = gensim_wikipedia("evaluation")
    assert calib == gensim_wikipedia("calibration")
    assert len(calib) > 50
    assert len(heldout) > 10
    assert not set(calib) & set(heldout)
    # Together the two splits are every article of the dump, in dump order.
    from prunekit.data import _cached_pages, _gensim_wiki_dump

    dump = _gensim_wiki_dump()
    everything = [p.text for p in _cached_pages(str(dump), *_stat_key(dump))]
    assert sorted(calib + heldout) == sorted(everything)
    # A larger held-out fraction only moves pages from calibration to evaluation.
    more = gensim_wikipedia("evaluation", eval_fraction=0.5)
    assert set(heldout) <= set(more)
    for text in calib[:20]:
        assert "[[" not in text
        assert "{{" not in text


def _stat_key(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def test_gensim_wikipedia_validates() -> None:
    with pytest.raises(ValueError, match="split must be"):
        gensim_wikipedia("test")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eval_fraction"):
        gensim_wikipedia("evaluation", eval_fraction=1.0)


def test_gensim_lee_documents() -> None:
    pytest.importorskip("gensim")
    docs = gensim_lee()
    # lee_background.cor holds 300 articles, one per line (gensim's documentation).
    assert len(docs) == 300
    assert all(len(d) > 100 for d in docs)


# ------------------------------------------------------------------------------ datasets extra


def test_hf_dataset_texts_validates_and_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from prunekit.data import hf_dataset_texts

    with pytest.raises(ValueError, match="name must be one of"):
        hf_dataset_texts("ptb", "test")
    with pytest.raises(ValueError, match="split for 'c4' must be one of"):
        hf_dataset_texts("c4", "test")
    # A None entry in sys.modules makes `import datasets` raise ModuleNotFoundError.
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ModuleNotFoundError, match=r"prunekit\[datasets\]"):
        hf_dataset_texts("wikitext2", "test")
