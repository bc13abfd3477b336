"""``GET /console``: the console's home: who is signed in, the role, and the sections that role may open."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from yizhan.console.auth import HOME_PATH, SignedInUser
from yizhan.console.layout import render

router = APIRouter(tags=["console"], include_in_schema=False)


@router.get(HOME_PATH, response_class=HTMLResponse)
def home(request: Request, user: SignedInUser) -> HTMLResponse:
    """The console's home page."""
    return render(request, "home.html", user=user)
