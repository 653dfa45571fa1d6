"""The API's content negotiation."""

from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's, with a shortcut for what nearly every client sends: no Accept
    header, `*/*`, or exactly the first renderer's media type, and no format
    override. The answer is the one DRF would give (the first renderer and its
    media type; tests/webhooks_project/test_negotiation.py compares them),
    without parsing and ranking the header, which cost a single-event publish
    4% of the web process's CPU. Anything else goes to DRF."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        first = renderers[0]
        if (
            accept in ("*/*", first.media_type)
            and not format_suffix
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
