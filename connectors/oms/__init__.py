"""OMS (旺店通 Wangdiantong 旗舰版 ERP): orders pulled by modified time, see :mod:`connectors.oms.client`."""
