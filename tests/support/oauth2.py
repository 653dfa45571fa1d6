"""A real local OAuth2 token endpoint (client credentials), on the test
receiver: the sender's OAuth2 tests and the attempt-log tests use it."""

from urllib.parse import parse_qs

from tests.support.receiver import json_reply


class TokenEndpoint:
    """Issues tok-1, tok-2, … and remembers every token request."""

    def __init__(self, start_receiver, tls, *, expires_in=3600, answer=None):
        self.calls: list[dict] = []
        self.expires_in = expires_in
        self.answer = answer
        self.server = start_receiver(self.reply, tls=tls)

    def reply(self, received):
        form = {k: v[0] for k, v in parse_qs(received.body.decode()).items()}
        self.calls.append({"form": form, "headers": received.headers})
        if self.answer is not None:
            return self.answer(received)
        return json_reply(
            {
                "access_token": f"tok-{len(self.calls)}",
                "token_type": "Bearer",
                "expires_in": self.expires_in,
            }
        )

    @property
    def url(self) -> str:
        return self.server.url("/oauth/token", host="localhost")
