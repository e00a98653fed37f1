"""Disinfection brigades in the staff bot (role `brigade`): join by invite, today's
tasks, start, live location while working, done with photos or blocked with a reason."""
