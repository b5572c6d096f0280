"""`manage.py runserver` is `manage.py serve`: Parkgate is one ASGI process (daphne) holding WebSockets, with the SMTP
server on its loop, which Django's own runserver cannot do. It takes runserver's ADDRPORT too."""

from project.management.commands import serve


class Command(serve.Command):
    help = "Parkgate's server, as `manage.py serve`; ADDRPORT (e.g. 8000 or 0.0.0.0:8000) sets its --http."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("addrport", nargs="?", help="PORT or HOST:PORT for HTTP and WebSockets (serve's --http)")

    def handle(self, *args, **options):
        if addrport := options.pop("addrport"):
            options["http"] = addrport if ":" in addrport else f"127.0.0.1:{addrport}"
        super().handle(*args, **options)
