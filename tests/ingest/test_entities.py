"""Ticker extraction: cashtags, exchange prefixes, aliases, relevance, false positives."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.entities import EntityExtractor
from ingest.exceptions import SourceConfigError


@pytest.fixture(scope="module")
def ex() -> EntityExtractor:
    return EntityExtractor.default()


def test_cashtags_upper_cased_with_class_suffix(ex: EntityExtractor) -> None:
    tickers, _ = ex.extract("", "Buying $aapl and $BRK.B, watching $TSLA.")
    assert tickers == ["AAPL", "BRK.B", "TSLA"]  # same count: earlier mention ranks higher


@pytest.mark.parametrize(
    "text",
    ["It costs $5 now", "a $5B deal", "US$300 fine", "$USD weakens", "the $CEO said", "$"],
)
def test_amounts_and_common_words_are_not_tickers(ex: EntityExtractor, text: str) -> None:
    assert ex.extract("", text)[0] == []


def test_exchange_prefixes_map_to_listing_symbols(ex: EntityExtractor) -> None:
    tickers, _ = ex.extract(
        "", "NASDAQ:AAPL rose, NYSE: JPM fell, LSE:BP. dipped and XETRA:SAP and EPA:MC gained"
    )
    assert set(tickers) == {"AAPL", "JPM", "BP.L", "SAP.DE", "MC.PA"}


def test_company_aliases(ex: EntityExtractor) -> None:
    tickers, _ = ex.extract("JPMorgan and Goldman Sachs lead; Nestlé slips", "Siemens and ASML")
    assert set(tickers) == {"JPM", "GS", "NESN.SW", "SIE.DE", "ASML.AS"}


def test_ambiguous_aliases_need_company_context(ex: EntityExtractor) -> None:
    assert ex.extract("Apple pie and a Shell on the beach", "")[0] == []
    assert ex.extract("Apple shares jump", "")[0] == ["AAPL"]
    assert ex.extract("", "Shell's refining margin")[0] == ["SHEL.L"]


def test_relevance_orders_title_then_early_then_frequent(ex: EntityExtractor) -> None:
    body = "Microsoft said on Monday ... " + "filler words " * 40 + " Nvidia, Nvidia, Nvidia."
    tickers, rel = ex.extract("Tesla recalls cars", body)
    assert tickers == ["TSLA", "MSFT", "NVDA"]
    assert 1 >= rel["TSLA"] > rel["MSFT"] > rel["NVDA"] > 0


def test_frequency_raises_relevance_at_the_same_position(ex: EntityExtractor) -> None:
    _, once = ex.extract("", "Intel. " + "x " * 50)
    _, thrice = ex.extract("", "Intel. Intel. Intel. " + "x " * 46)
    assert thrice["INTC"] > once["INTC"]


def test_explicit_tickers_are_kept_with_a_floor(ex: EntityExtractor) -> None:
    tickers, rel = ex.extract("no names here", "", explicit=["$aapl", "bad ticker!"])
    assert tickers == ["AAPL"] and rel["AAPL"] == 0.5


def test_user_table_extends_the_default(tmp_path: Path) -> None:
    table = tmp_path / "mine.csv"
    table.write_text("symbol,aliases\nACME,Acme Corp|Acme\nZZ.L,~Zed\n", encoding="utf-8")
    ex = EntityExtractor.from_files([table])
    assert ex.extract("Acme Corp and Apple Inc", "")[0] == ["ACME", "AAPL"]
    assert ex.extract("Zed went home", "")[0] == []


def test_bad_user_table_is_a_config_error(tmp_path: Path) -> None:
    table = tmp_path / "bad.csv"
    table.write_text("not a ticker!,Foo\n", encoding="utf-8")
    with pytest.raises(SourceConfigError, match="row 1"):
        EntityExtractor.from_files([table])


def test_shipped_table_covers_large_us_and_european_issuers(ex: EntityExtractor) -> None:
    symbols = set(ex.aliases.values())
    assert len(symbols) >= 150
    assert {"AAPL", "JPM", "HSBA.L", "SAP.DE", "MC.PA", "NESN.SW", "ASML.AS"} <= symbols
