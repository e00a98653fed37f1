"""The News page (the communications role): write an item in ru, kk and en, preview it
as Telegram shows it, see how many it goes to and how long the send takes, publish it to
the city's channel and/or the citizen bot's subscribers, and follow the send."""

from __future__ import annotations

from aiohttp import web

from admin.panel import CITY_TIMEZONE, add_route, path_id, render, session_of
from flows.notices import news_notice
from services.languages import LANGUAGES
from services.news import MAX_TEXT, NewsError, NewsService

NEWS: web.AppKey[NewsService] = web.AppKey("news", NewsService)
ROLES = frozenset({"communications"})


async def _list(
    request: web.Request, *, error: str = "", entered: dict[str, str] | None = None
) -> web.Response:
    news = request.app[NEWS]
    return render(
        request,
        "panel/news.html",
        status=400 if error else 200,
        items=await news.latest(),
        districts=await news.districts(),
        subscribers=await news.audience(),
        channel=news.channel,
        languages=LANGUAGES,
        max_text=MAX_TEXT,
        entered=entered or {},
        error=error,
        tz=request.app[CITY_TIMEZONE],
    )


async def news_page(request: web.Request) -> web.Response:
    return await _list(request)


async def write(request: web.Request) -> web.Response:
    form = await request.post()
    entered = {k: str(form.get(k, ""))[: MAX_TEXT * 2] for k in (*LANGUAGES, "district")}
    urgent = form.get("urgent") == "yes"
    try:
        news_id = await request.app[NEWS].write(
            {lang: entered[lang] for lang in LANGUAGES},
            actor=session_of(request).user.username,
            district=entered["district"][:200] or None,
            urgent=urgent,
        )
    except NewsError as error:
        message = str(error)
        return await _list(request, error=message[0].upper() + message[1:] + ".", entered=entered)
    raise web.HTTPSeeOther(f"/news/{news_id}")


async def _item_page(request: web.Request, news_id: int, *, error: str = "") -> web.Response:
    news = request.app[NEWS]
    try:
        item = await news.get(news_id)
    except NewsError:
        raise web.HTTPNotFound(text="no such news item") from None
    audience = item.audience if item.published_at else await news.audience(item.district)
    params = {"texts": item.texts, "district": item.district}
    kind = "news_urgent" if item.urgent else "news"
    # What the notifier will send, rendered by the same function
    previews = {lang: news_notice(kind, params, lang) for lang in LANGUAGES}
    return render(
        request,
        "panel/news_item.html",
        status=400 if error else 200,
        item=item,
        previews=previews,
        channel_preview=news_notice("news_channel", params, "en").text,
        audience=audience,
        estimate=news.estimate(audience),
        progress=await news.progress(news_id) if item.published_at else None,
        channel=news.channel,
        languages=LANGUAGES,
        error=error,
        tz=request.app[CITY_TIMEZONE],
    )


async def item_page(request: web.Request) -> web.Response:
    return await _item_page(request, path_id(request, "news_id", "news item"))


async def publish(request: web.Request) -> web.Response:
    news_id = path_id(request, "news_id", "news item")
    form = await request.post()
    try:
        await request.app[NEWS].publish(
            news_id,
            actor=session_of(request).user.username,
            to_channel=form.get("channel") == "yes",
            to_subscribers=form.get("subscribers") == "yes",
        )
    except NewsError as error:
        if error.code == "news.not_found":
            raise web.HTTPNotFound(text="no such news item") from None
        message = str(error)
        return await _item_page(request, news_id, error=message[0].upper() + message[1:] + ".")
    raise web.HTTPSeeOther(f"/news/{news_id}")


def setup_news_pages(app: web.Application, news: NewsService) -> None:
    app[NEWS] = news
    add_route(app, "GET", "/news", news_page, roles=ROLES, title="News")
    add_route(app, "POST", "/news", write, roles=ROLES)
    add_route(app, "GET", "/news/{news_id}", item_page, roles=ROLES)
    add_route(app, "POST", "/news/{news_id}/publish", publish, roles=ROLES)
