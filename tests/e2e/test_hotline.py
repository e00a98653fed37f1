"""The hotline through the sandbox: FAQ answers in the person's language, closest topics
below the threshold (the question kept without identity), hand-off to an agent with the
conversation relayed both ways, and an agent's scripted call, logged."""

from __future__ import annotations

import secrets

from bots.sandbox.client import SandboxClient, buttons
from citybots.wiring import Services
from flows.context import Limits
from flows.faq import answer_text, answers
from flows.hotline.call_scripts import scripts
from presentation.i18n import text
from tests.factories import joined_officer


async def _last_call(services: Services) -> tuple[str, str, str]:
    """The topic, outcome and district of the latest call the hotline logged."""
    row = await services.tickets.pool.fetchrow(
        "SELECT topic, outcome, district FROM hotline_calls ORDER BY id DESC LIMIT 1"
    )
    return row["topic"], row["outcome"], row["district"]


async def test_questions_are_answered_in_the_persons_language(
    sandbox: SandboxClient, services: Services
) -> None:
    ru = await sandbox.chat("citizen", language_code="ru")
    await ru.send("что такое коронавирус?")
    assert (await ru.reply())["text"] == answer_text("ru", "faq_what_is_covid", Limits())
    kk = await sandbox.chat("citizen", language_code="kk")
    await kk.send("жасыл мәртебе қанша уақыт жарамды")
    assert (await kk.reply())["text"] == answer_text("kk", "faq_status_duration", Limits())
    en = await sandbox.chat("citizen", language_code="en")
    marker = secrets.token_hex(3)
    await en.send(f"my cat {marker} likes jazz, iin 900101300011")
    unsure = await en.reply()
    assert unsure["text"] == text("en", "faq.not_sure")
    offered = buttons(unsure)
    assert len(offered) == 4
    assert offered[-1] == text("en", "faq.operator")
    await en.press(offered[0])
    topic = next(i for i, a in answers("en").items() if a["title"] == offered[0])
    assert (await en.reply())["text"] == answer_text("en", topic, Limits())
    kept = [u for u in await services.hotline.unanswered() if marker in u.text]
    assert kept[0].language == "en"
    assert "900101300011" not in kept[0].text  # personal numbers are scrubbed


async def test_a_citizen_is_handed_to_an_agent_and_back(
    sandbox: SandboxClient, services: Services
) -> None:
    await services.tickets.pool.execute("UPDATE officers SET on_shift = false")
    await services.tickets.pool.execute(
        "UPDATE hotline_tickets SET state = 'closed' WHERE state <> 'closed'"
    )
    citizen = await sandbox.chat("citizen", language_code="ru")
    await citizen.send("соедините с оператором")
    waiting = (await citizen.reply())["text"]
    number = waiting.split("№")[1].split(":")[0]
    assert waiting == text("ru", "faq.operator_waiting", number=number)

    agent = await sandbox.chat("agent", language_code="en")
    token = await services.permits.create_officer_invite("agent", created_by="test")
    await agent.send(f"/start {token}")
    assert (await agent.reply())["text"] == text("en", "agent.joined")
    await agent.send(text("en", "agent_menu.shift_on"))
    shift, ticket = await agent.replies(2)
    assert ticket["text"] == text(
        "en", "agent.ticket", number=number, question="соедините с оператором"
    )
    assert shift["text"].startswith(text("en", "agent.shift_on", count=99)[:20])
    await agent.press(text("en", "agent.take"))
    taken = await agent.reply()
    assert taken["text"].startswith(f"You are talking with request #{number}")
    assert (await citizen.reply())["text"] == text("ru", "notices.hotline_taken", number=number)

    await citizen.send("у меня температура 38, что делать?")
    relayed = await agent.reply()
    assert relayed["text"] == text(
        "en",
        "notices.hotline_from_citizen",
        number=number,
        text="у меня температура 38, что делать?",
    )
    await agent.send("Позвоните в поликлинику, врач придёт на дом.")
    assert (await citizen.reply())["text"] == text(
        "ru", "notices.hotline_reply", text="Позвоните в поликлинику, врач придёт на дом."
    )
    await agent.press(text("en", "agent.close"))
    assert (await agent.reply())["text"] == text("en", "agent.closed", number=number)
    assert (await citizen.reply())["text"] == text("ru", "notices.hotline_closed", number=number)
    await citizen.send("что такое ковид")
    assert (await citizen.reply())["text"] == answer_text("ru", "faq_what_is_covid", Limits())


async def test_an_agent_walks_a_script_and_the_call_is_logged(
    sandbox: SandboxClient, services: Services
) -> None:
    stranger = await sandbox.chat("agent")
    await stranger.send(text("en", "agent_menu.script"))
    assert (await stranger.reply())["text"] == text("en", "agent.not_agent")
    agent = await joined_officer(sandbox, services, "agent", lang="ru", menu="agent_menu.script")
    await agent.send("где можно сдать пцр тест")
    suggested = await agent.reply()
    title = answers("ru")["faq_pcr_testing"]["title"]
    assert buttons(suggested)[0] == "📋 " + scripts()["test_results"].title["ru"]
    assert title in buttons(suggested)
    await agent.press(title)
    script = await agent.reply()
    assert answer_text("ru", "faq_pcr_testing", Limits()) in script["text"]
    await agent.press(text("ru", "agent.outcome.referred"))
    await agent.reply()
    await agent.press("Medeu")
    assert (await agent.reply())["text"] == text("ru", "agent.logged")
    assert await _last_call(services) == ("faq_pcr_testing", "referred", "Medeu")


async def test_an_agent_walks_a_decision_tree_to_its_outcome(
    sandbox: SandboxClient, services: Services
) -> None:
    agent = await joined_officer(sandbox, services, "agent", menu="agent_menu.script")
    await agent.send("my father has a high temperature and coughs, what should we do")
    symptoms = scripts()["symptoms"]
    suggested = await agent.reply()
    assert buttons(suggested)[0] == "📋 " + symptoms.title["en"]
    await agent.press("📋 " + symptoms.title["en"])
    assert (await agent.reply())["text"] == "📋 " + symptoms.title["en"]
    question = await agent.reply()
    assert symptoms.nodes["danger_signs"].ask["en"] in question["text"]  # type: ignore[index]
    await agent.press("No")
    assert "fever" in (await agent.reply())["text"]
    await agent.press("Yes")
    assert "60 or older" in (await agent.reply())["text"]
    await agent.press("Yes")
    end = await agent.reply()
    assert symptoms.nodes["doctor_call"].say["en"] in end["text"]  # type: ignore[index]
    assert text("en", "agent.outcome.callback") in end["text"]
    await agent.reply()  # the districts
    await agent.press("Turksib")
    assert (await agent.reply())["text"] == text("en", "agent.logged")
    assert await _last_call(services) == ("script_symptoms", "callback", "Turksib")
    # A button of a script that is no longer being walked says so instead of guessing.
    await agent.press("No")
    assert (await agent.reply())["text"] == text("en", "agent.script_expired")


async def test_a_waiting_citizen_can_cancel_and_is_still_answered_meanwhile(
    sandbox: SandboxClient, services: Services
) -> None:
    await services.tickets.pool.execute("UPDATE officers SET on_shift = false")
    citizen = await sandbox.chat("citizen", language_code="ru")
    await citizen.send("соедините с оператором")
    waiting = await citizen.reply()
    number = waiting["text"].split("№")[1].split(":")[0]
    assert buttons(waiting) == [text("ru", "faq.operator_cancel")]

    await citizen.send("что такое коронавирус?")  # the FAQ still answers
    answered = await citizen.reply()
    assert answered["text"].startswith(answer_text("ru", "faq_what_is_covid", Limits()))
    assert text("ru", "faq.operator_still_waiting", number=number) in answered["text"]
    assert buttons(answered) == [text("ru", "faq.operator_cancel")]
    await citizen.send(f"кот {secrets.token_hex(3)} любит джаз")
    assert (await citizen.reply())["text"] == text(
        "ru", "faq.operator_still_waiting", number=number
    )

    stranger = await sandbox.chat("citizen", language_code="ru")
    assert not await services.tickets.withdraw(int(number), stranger.user_id)  # not theirs
    await citizen.press(text("ru", "faq.operator_cancel"))
    assert (await citizen.reply())["text"] == text("ru", "faq.operator_withdrawn", number=number)
    assert await services.tickets.current(citizen_chat=citizen.user_id) is None
    await citizen.press(text("ru", "faq.operator_cancel"))  # an old button, pressed again
    assert (await citizen.reply())["text"] == text("ru", "faq.operator_not_waiting", number=number)
    await citizen.send("что такое коронавирус?")
    assert (await citizen.reply())["text"] == answer_text("ru", "faq_what_is_covid", Limits())
