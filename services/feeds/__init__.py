"""The situation centre's feeds: road traffic, public transport, incoming flights,
hospital beds, medical workers examined, pharmacies and quarantine centres, budget."""
