"""Staff bot: registering a venue, its QR codes and posters, verifying it (the head's
phone on the organisations' register), staff invites, occupancy, statistics, closing
time, checking in a visitor without a smartphone by IIN and checking one visitor out by
IIN (both only at a verified venue, by its verified owner and the staff they invited).

This module routes; the handlers are in registration.py, manage.py and staff_checkin.py."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import StateFilter

from flows.filters import HasContact, StartPayload, register_entry
from flows.venues.manage import (
    got_capacity_number,
    got_head_phone,
    got_new_auto_checkout,
    head_phone_expected,
    join_by_invite,
    my_venues,
    venue_action,
)
from flows.venues.registration import (
    category_expected,
    got_address,
    got_auto_checkout,
    got_bin,
    got_capacity,
    got_category,
    got_entrances,
    got_location,
    got_name,
    skip_step,
    start_registration,
)
from flows.venues.shared import (
    AtVenue,
    Pick,
    PickAction,
    VenueForm,
)
from flows.venues.staff_checkin import (
    staff_checkin_venue,
    start_staff_checkin,
    visitor_iin,
)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(join_by_invite, StartPayload("staff_"))
    register_entry(router, start_registration, button="staff_menu.register")
    register_entry(router, my_venues, button="staff_menu.venues")
    register_entry(router, start_staff_checkin, button="staff_menu.checkin")
    router.message.register(got_bin, StateFilter(VenueForm.bin))
    router.message.register(got_name, StateFilter(VenueForm.name))
    router.callback_query.register(
        got_category, StateFilter(VenueForm.category), Pick.filter(), PickAction("category")
    )
    router.message.register(category_expected, StateFilter(VenueForm.category))
    router.message.register(got_address, StateFilter(VenueForm.address))
    router.message.register(got_location, StateFilter(VenueForm.location))
    router.message.register(got_capacity, StateFilter(VenueForm.capacity))
    router.message.register(got_auto_checkout, StateFilter(VenueForm.auto_checkout))
    router.message.register(got_entrances, StateFilter(VenueForm.entrances))
    router.callback_query.register(skip_step, Pick.filter(), PickAction("skip"))
    router.callback_query.register(staff_checkin_venue, Pick.filter(), PickAction("checkin"))
    router.callback_query.register(venue_action, Pick.filter())
    router.message.register(visitor_iin, StateFilter(AtVenue.check_in_iin, AtVenue.check_out_iin))
    router.message.register(got_head_phone, StateFilter(AtVenue.head_phone), HasContact())
    router.message.register(head_phone_expected, StateFilter(AtVenue.head_phone))
    router.message.register(got_capacity_number, StateFilter(AtVenue.capacity))
    router.message.register(got_new_auto_checkout, StateFilter(AtVenue.auto_checkout))
    return router
