"""Markdown answers become safe HTML; uploads are judged by decoding them."""

from __future__ import annotations

import io
from html.parser import HTMLParser

import pytest
from PIL import Image

from arena.errors import PayloadTooLarge, UnsupportedMediaType
from arena.web.images import ImageLimits, prepare_image
from arena.web.markdown import highlight_css, render_markdown


def test_markdown_is_rendered_with_highlighted_code():
    html = render_markdown("# Title\n\n- **bold** item\n\n```python\nprint('hi')\n```\n")
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html
    assert '<pre class="highlight"><code class="language-python">' in html
    assert '<span class="nb">print</span>' in html
    assert ".highlight .nb" in highlight_css()


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=https://example.com></iframe>",
        '<div onclick="alert(1)">x</div>',
        "![p](https://tracker.example/p.png)",
        "<style>body{display:none}</style>",
    ],
)
def test_html_in_answers_never_survives(attack):
    html = render_markdown(f"Answer: {attack}")
    elements = _elements(html)
    tags = {tag for tag, _ in elements}
    assert tags <= {"p", "a", "code", "pre", "span", "strong", "em"}, html
    for _tag, attrs in elements:
        for name, value in attrs:
            assert not name.startswith("on"), html
            assert not (value or "").strip().lower().startswith("javascript"), html


def _elements(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every element the browser would build from ``html`` (tag, attributes)."""
    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Collect().feed(html)
    return found


def test_unknown_code_language_is_escaped():
    html = render_markdown("```nosuchlang\n<b>x</b>\n```")
    assert "&lt;b&gt;" in html and "<b>" not in html


def _encode(fmt: str, size=(64, 48), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
def test_allowed_formats_are_accepted(fmt, mime):
    image = prepare_image(_encode(fmt))
    assert image.mime_type == mime and (image.width, image.height) == (64, 48)
    assert not image.resized and len(image.content_hash) == 64


def test_type_comes_from_decoding_not_from_the_name():
    with pytest.raises(UnsupportedMediaType):
        prepare_image(_encode("BMP"))
    with pytest.raises(UnsupportedMediaType):
        prepare_image(b"GIF89a but not really an image")
    with pytest.raises(UnsupportedMediaType):
        prepare_image(_encode("PNG")[:60])  # truncated


def test_large_images_are_resized_and_oversized_refused():
    image = prepare_image(_encode("PNG", size=(4000, 1000)), ImageLimits(max_side=1000))
    assert image.resized and (image.width, image.height) == (1000, 250)
    assert Image.open(io.BytesIO(image.data)).size == (1000, 250)
    with pytest.raises(PayloadTooLarge):
        prepare_image(_encode("PNG"), ImageLimits(max_bytes=100))
    with pytest.raises(PayloadTooLarge):
        prepare_image(_encode("PNG", size=(3000, 3000)), ImageLimits(max_pixels=1_000_000))
