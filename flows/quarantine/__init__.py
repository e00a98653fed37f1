"""Home quarantine: the patient's side (quarantine bot) and the doctor's (doctor bot)."""
