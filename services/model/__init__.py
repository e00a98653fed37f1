"""The stochastic epidemic model: scenarios of contacts per day and probability per
contact, run person by person on a population of millions (see ``simulate``)."""
