import pytest

PAGES = ["overview", "models", "environments", "endpoints", "playground", "token_ranks", "monitoring", "consumers"]


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_an_empty_workspace(open_page, page):
    at = open_page(page)
    assert at.title[0].value
