"""The staff's and planners' console: server-rendered pages behind sign-in (entry point, beside ``routes`` and
``pages``; it imports ``accounts`` and never ``routes``, so ``routes`` may use its dependencies).

Modules: ``auth`` (the dependencies below, the session cookie), ``layout`` (templates, style sheet, headers, the
sections of the home page), ``signin`` (``/console/signin``, ``/console/signout``), ``home`` (``/console``),
``users`` (``/console/users``, admins only), ``registry`` and ``demand`` (uploads, the table, downloads; ``uploads``
checks an upload's size before it is read), ``runs``, ``compare`` and ``recommendations`` (started as background
``jobs``, followed on ``progress`` pages), and ``site`` (``install(app)``: the routers, the style sheets and scripts
at ``/console-assets`` and the answers to the dependencies' refusals).

A new console page
------------------
1. A module named after its concept, e.g. ``console/registry.py``, with ``router = APIRouter(tags=["console"],
   include_in_schema=False)``; add it to ``site.install``.
2. Its handler takes the user as a parameter; this is what makes it need sign-in (a browser without a session is
   sent to ``/console/signin?next=<its path>`` and comes back after signing in)::

       @router.get("/console/registry", response_class=HTMLResponse)
       def registry_page(request: Request, user: SignedInUser) -> HTMLResponse:
           return render(request, "registry.html", user=user, stations=...)

   For a role: ``user: Annotated[SignedIn, Depends(require_role("admin", "staff"))]`` (``AdminUser`` for admins
   only); another role gets a 403 page naming the role needed. For a form post, take ``_: CsrfChecked`` as well
   (the form's hidden ``csrf_token`` must be the session's, else 403), and answer with a 303 (post, redirect, get).
3. Its template extends the layout and fills ``content``; every form includes the hidden token::

       {% extends "base.html" %}
       {% block title %}站点登记 Registry{% endblock %}
       {% block content %}
       <form method="post" action="{{ root }}/console/registry" enctype="multipart/form-data">
         {{ csrf_field }} ...
       </form>
       {% endblock %}

   Text is Chinese first with English beside (``<span class="en">``); every value from data goes through
   Jinja2's escaping (never ``|safe`` on data). ``root`` prefixes every URL (a proxy's path prefix). A page loads
   nothing from another host and runs no script (``layout.CSP``); the few that must (a job's progress, the
   comparison's map) run only their own files from ``static/`` under ``progress.SCRIPT_CSP``, never inline script.
   Styles go in ``static/console.css`` (or a page's own sheet beside it).
4. The page's section is listed in ``layout.SECTIONS`` (path, names, roles), which the home page and the menu show.
"""
