"""The log explorer's histogram, facet sidebar and query-bar autocompletion (issue #6) in a real browser, against
the real binary loaded with the planted logs of ui_helpers (svc_a: info, error, warn; svc_b: info, error; all
tagged run:<run>). Every visit must be free of console errors, failed requests and XSS."""

import json
import re
from urllib.parse import parse_qs, urlparse

from ui_helpers import SCREENSHOTS, browse, problems, ui  # noqa: F401 (ui is a fixture)


def facet_value(facet, value):
    return f'[data-testid=facet-section][data-facet="{facet}"] [data-testid=facet-value][data-value="{value}"]'


def facet_exclude(facet, value):
    return f'[data-testid=facet-section][data-facet="{facet}"] [data-testid=facet-exclude][data-value="{value}"]'


def url_query(result):
    return parse_qs(urlparse(result["url"]).query).get("query", [""])[0]


def test_histogram_facets_and_autocomplete(ui):
    server, data = ui
    run, svc_a, svc_b = data["run"], data["svc_a"], data["svc_b"]
    scoped = f"/logs?query=run:{run}"
    testids = ["histogram-bar", "facet-section", "facet-value", "facet-count", "autocomplete-item", "log-row"]
    visits = [
        # 1. The histogram and the sidebar's counts.
        {"path": scoped, "waitFor": "[data-testid=histogram-bar]", "testids": testids,
         "screenshot": str(SCREENSHOTS / "logs-facets.png"),
         "actions": [{"waitFor": facet_value("service", svc_a)}, {"waitFor": facet_value("service", svc_b)}]},
        # 2. A click on a value includes it.
        {"path": scoped, "waitFor": facet_value("service", svc_b), "testids": testids,
         "actions": [{"click": facet_value("service", svc_b)}, {"waitForURL": "service"},
                     {"waitForRows": "log-row", "allContain": svc_b, "count": 2}]},
        # 3. Include, then the exclude control: the term flips to -service:… (not added twice).
        {"path": scoped, "waitFor": facet_value("service", svc_b), "testids": testids,
         "actions": [{"click": facet_value("service", svc_b)}, {"waitForURL": "service"},
                     {"waitForRows": "log-row", "count": 2},
                     {"click": facet_exclude("service", svc_b)}, {"waitForURL": "-service"},
                     {"waitForRows": "log-row", "allContain": svc_a, "count": 3}]},
        # 4. Typing `service:` offers the service values.
        {"path": scoped, "waitFor": facet_value("service", svc_a), "testids": testids,
         "screenshot": str(SCREENSHOTS / "logs-autocomplete.png"),
         "actions": [{"fill": "[data-testid=query-input]", "text": "service:"},
                     {"waitFor": "[data-testid=autocomplete-item]"}]},
        # 5. Keyboard: down, Enter accepts the first value (the most frequent: svc_a), Enter searches.
        {"path": scoped, "waitFor": facet_value("service", svc_a), "testids": testids,
         "actions": [{"fill": "[data-testid=query-input]", "text": "service:"},
                     {"waitFor": "[data-testid=autocomplete-item]"},
                     {"press": "ArrowDown", "selector": "[data-testid=query-input]"},
                     {"press": "Enter", "selector": "[data-testid=query-input]"},
                     {"press": "Enter", "selector": "[data-testid=query-input]"},
                     {"waitForURL": "query=service"},
                     {"waitForRows": "log-row", "allContain": svc_a, "count": 3}]},
        # 6. History: the query that ran is offered when the input is emptied.
        {"path": scoped, "waitFor": "[data-testid=log-row]", "testids": testids,
         "actions": [{"fill": "[data-testid=query-input]", "text": ""},
                     {"waitFor": "[data-testid=autocomplete-item]"}]},
    ]
    res = browse(server.http, visits)
    bad = {i + 1: problems(r) for i, r in enumerate(res) if problems(r)}
    assert not bad, json.dumps(bad, indent=1)
    drawn, include, exclude, typed, keyboard, history = res

    # 1. At least one bar; service counts among run:<run>.
    assert drawn["counts"]["histogram-bar"] >= 1, drawn["counts"]
    sections = drawn["counts"]["facet-section"]
    assert sections >= 5, drawn["counts"]

    def count_of(value):
        for t in drawn["texts"]["facet-value"]:
            m = re.fullmatch(re.escape(value) + r"\s*(\d+)", t.strip())
            if m:
                return int(m.group(1))
        raise AssertionError(f"no facet value {value!r}: {drawn['texts']['facet-value']}")

    assert count_of(svc_a) == 3 and count_of(svc_b) == 2, drawn["texts"]["facet-value"]
    assert count_of("ui-host") == 5 and count_of("e2e") == 5, drawn["texts"]["facet-value"]

    # 2. Include.
    assert url_query(include) == f"run:{run} service:{svc_b}", include["url"]
    rows = include["texts"]["log-row"]
    assert len(rows) == 2 and all(svc_b in t for t in rows), rows

    # 3. Exclude.
    assert url_query(exclude) == f"run:{run} -service:{svc_b}", exclude["url"]
    rows = exclude["texts"]["log-row"]
    assert len(rows) == 3 and all(svc_a in t and svc_b not in t for t in rows), rows

    # 4. A tag value offered.
    items = typed["texts"]["autocomplete-item"]
    assert any(f"service:{svc_a}" in t for t in items), items
    assert any(f"service:{svc_b}" in t for t in items), items

    # 5. Accepted by keyboard.
    assert url_query(keyboard) == f"service:{svc_a}", keyboard["url"]

    # 6. History.
    assert any(f"run:{run}" in t for t in history["texts"]["autocomplete-item"]), history["texts"]
    for name in ("logs-facets.png", "logs-autocomplete.png"):
        assert (SCREENSHOTS / name).stat().st_size > 0
