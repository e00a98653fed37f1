"""Phone numbers people share with the contact button."""

from __future__ import annotations

from aiogram.types import Message

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
