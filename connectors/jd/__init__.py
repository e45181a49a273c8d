"""JD POP (京东 JOS / 宙斯): orders pulled by modified time, see :mod:`connectors.jd.client`."""
