"""A local stand-in for the HuggingFace Hub's file API (127.0.0.1 only), for the tests that
download through huggingface_hub: test_hub.py and test_gluonnlp_tutorial.py."""
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

LFS = ('.safetensors', '.bin')  # served as the Hub serves LFS files: redirect + sha256 ETag


def git_sha1(data):
    """The git blob sha1 the Hub uses as ETag of a small (non-LFS) file."""
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) answering with `handler`; `url` is its
    address, `close()` stops it and joins its thread."""

    def __init__(self, handler, path=''):
        self.server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}{path}'
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs=dict(poll_interval=0.05), daemon=True)
        self.thread.start()

    def close(self):
        """Stop serving and join the thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class FakeHub(LocalServer):
    """A real HTTP server on 127.0.0.1 serving HEAD/GET /{repo}/resolve/{revision}/{file}.

    repos: repo -> {'branches': {name: commit}, 'commits': {commit: {file: bytes}}}.
    corrupt: file names served with one byte changed (the ETag still names the right bytes).
    Records every (method, path) in `requests`.
    """

    def __init__(self):
        self.repos, self.corrupt, self.requests = {}, set(), []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            """Answers like the Hub's /resolve endpoint and its LFS CDN."""
            timeout = 20

            def do_HEAD(self):
                """Metadata only."""
                hub.answer(self, body=False)

            def do_GET(self):
                """Metadata and content."""
                hub.answer(self, body=True)

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def add_repo(self, repo, commits, branches):
        """Serve `repo` with its commits (commit -> {file: bytes}) and branches."""
        self.repos[repo] = dict(commits=commits, branches=branches)

    def answer(self, handler, body):
        """Route one request."""
        self.requests.append((handler.command, handler.path))
        parts = unquote(handler.path).split('/')
        if parts[1] == 'plain':  # a web server that is not a Hub
            handler.send_response(200)
            handler.send_header('Content-Length', '0')
            handler.end_headers()
            return None
        if parts[1] == 'cdn':  # /cdn/{repo}/{commit}/{file}: where LFS redirects point
            repo, commit, name = '/'.join(parts[2:4]), parts[4], '/'.join(parts[5:])
            return self.send_file(handler, repo, commit, name, body)
        if len(parts) < 6 or parts[3] != 'resolve':
            return self.error(handler, 404, 'RepoNotFound')
        repo, revision, name = '/'.join(parts[1:3]), parts[4], '/'.join(parts[5:])
        if repo not in self.repos:
            return self.error(handler, 404, 'RepoNotFound')
        commits, branches = self.repos[repo]['commits'], self.repos[repo]['branches']
        commit = branches.get(revision, revision)
        if commit not in commits:
            return self.error(handler, 404, 'RevisionNotFound')
        if name not in commits[commit]:
            return self.error(handler, 404, 'EntryNotFound', commit)
        if name.endswith(LFS):
            data = commits[commit][name]
            handler.send_response(302)
            handler.send_header('Location', f'/cdn/{repo}/{commit}/{name}')
            self.metadata_headers(handler, commit, hashlib.sha256(data).hexdigest(), len(data))
            handler.send_header('Content-Length', '0')
            handler.end_headers()
            return None
        return self.send_file(handler, repo, commit, name, body)

    def send_file(self, handler, repo, commit, name, body):
        """200 with the Hub's metadata headers, and the bytes for a GET."""
        data = self.repos[repo]['commits'][commit][name]
        lfs = name.endswith(LFS)
        etag = hashlib.sha256(data).hexdigest() if lfs else git_sha1(data)
        if name in self.corrupt:
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        handler.send_response(200)
        self.metadata_headers(handler, commit, etag, len(data))
        handler.send_header('ETag', f'"{etag}"')
        handler.send_header('Content-Length', str(len(data)))
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    @staticmethod
    def metadata_headers(handler, commit, etag, size):
        """X-Repo-Commit and the linked (LFS) etag and size huggingface_hub reads."""
        handler.send_header('X-Repo-Commit', commit)
        handler.send_header('X-Linked-Etag', f'"{etag}"')
        handler.send_header('X-Linked-Size', str(size))

    @staticmethod
    def error(handler, status, code, commit=None):
        """An error as the Hub sends it: X-Error-Code names the kind."""
        handler.send_response(status)
        handler.send_header('X-Error-Code', code)
        if commit:
            handler.send_header('X-Repo-Commit', commit)
        handler.send_header('Content-Length', '0')
        handler.end_headers()

    def fetched(self, name):
        """The GET paths that delivered `name`."""
        return [path for method, path in self.requests if method == 'GET' and
                unquote(path).endswith('/' + name)]

