"""快递100 (Kuaidi100) carrier tracking: subscription pushes only (mode ``webhook``)."""
