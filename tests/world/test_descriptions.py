"""Reading terms back out of free text, and writing descriptions from terms."""

from caig.world.descriptions import compose_description, parse_description


def test_parse_finds_terms_by_group_and_ignores_punctuation():
    parsed = parse_description('"In a Living Room, on oak wood." Golden hour; with NEON GLOW!')
    assert parsed.first("scene").text == "living room"
    assert parsed.first("surface").text == "oak wood"
    assert parsed.first("lighting").text == "golden hour"
    assert parsed.first("eye_catching").text == "neon glow"


def test_parse_does_not_match_inside_other_words():
    assert parse_description("a sky bluebird over rustically painted walls").all_terms == ()


def test_compose_then_parse_round_trips():
    terms = {"scene": "cafe table", "surface": "white marble", "prop": "fresh lemons", "palette": "sky blue",
             "lighting": "soft daylight", "framing": "tabletop shot", "style": "minimalist",
             "eye_catching": "fireworks burst"}
    parsed = parse_description(compose_description(terms))
    assert {g: parsed.first(g).text for g in terms} == terms
