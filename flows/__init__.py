"""Conversation flows: one package per flow, each building an aiogram Router."""
