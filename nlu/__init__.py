"""The hotline's language understanding: Rasa-format training data in ru, kk and en, an
embedded classifier trained from it, and one ``parse`` in the shape of Rasa's
``/model/parse``."""
