"""Phone numbers people share with the contact button."""

from __future__ import annotations

from aiogram.types import Message, ReplyKeyboardMarkup

from presentation.keys import input_error
from services.validation import InvalidInput, parse_phone


def own_phone(message: Message) -> str:
    """The sender's own number, normalised. Telegram sets ``contact.user_id`` to the
    sender's id only when they share themselves, so a contact from the address book
    (someone else's number) is refused with the code ``not_own_contact``; a number
    that is not a Kazakhstan mobile with the phone rule's own code."""
    contact = message.contact
    if contact is None or message.from_user is None or contact.user_id != message.from_user.id:
        raise InvalidInput("not_own_contact")
    return parse_phone(contact.phone_number)


async def shared_phone(
    message: Message,
    lang: str,
    keyboard: ReplyKeyboardMarkup | None = None,
    not_own: str | None = None,
) -> str | None:
    """The sender's own number from the contact they shared, or None once they are told
    what is wrong (with ``keyboard`` to try again): ``not_own``, when given, for someone
    else's contact, else the phone rule's message."""
    try:
        return own_phone(message)
    except InvalidInput as error:
        answer = input_error(lang, error.code)
        if error.code == "not_own_contact" and not_own is not None:
            answer = not_own
        await message.answer(answer, reply_markup=keyboard)
        return None
