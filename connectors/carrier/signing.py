"""快递100 (Kuaidi100) subscription-push signature (快递信息推送服务, 回调接口).

Kuaidi100 POSTs ``param=<JSON text>&sign=<hex>`` (``application/x-www-form-urlencoded``) to the
``callbackurl`` given at subscription; ``sign`` = MD5 of ``param + salt``, hex, **upper case**,
where ``salt`` is the ``parameters.salt`` the subscriber chose and ``param`` the form field's
text exactly as posted (after form decoding, before any JSON parsing). Sources: the official
SDK ``kuaidi100-api/java-demo`` - ``SignUtils.sign`` ("快递100加密方式统一为MD5后转大写":
``DigestUtils.md5Hex(msg).toUpperCase()``, UTF-8) and ``SubscribeWithMap.callBackUrl``
(``SignUtils.sign(param + salt)`` compared with the posted ``sign``) - and the 订阅推送 guide
(``parameters.salt``: "签名用随机字符串"; the push is a form with fields ``param`` and ``sign``),
as reproduced in Kuaidi100's own articles (e.g. cloud.tencent.com/developer/article/1828132).
Not confirmed here: the official guide page itself could not be read, so the rule rests on the
official SDK; it says nothing of a push timestamp, and none is assumed.

We compare in constant time and accept the hex in either case (Kuaidi100 sends upper case;
accepting lower case costs nothing, the digest is the secret-dependent part). Without a salt
the "signature" is a plain MD5 of public text that anyone can compute, so an empty salt is
refused by the push spec rather than accepted here.
"""

from __future__ import annotations

import hashlib
import hmac

PARAM_FIELD = "param"
SIGN_FIELD = "sign"


def push_sign(param: str, salt: str) -> str:
    """The ``sign`` Kuaidi100 posts with ``param`` (UTF-8 MD5 of ``param + salt``, upper hex)."""
    return hashlib.md5((param + salt).encode("utf-8")).hexdigest().upper()


def verify_push(param: str, salt: str, sign: str | None) -> bool:
    """Whether ``sign`` is Kuaidi100's signature of ``param`` under ``salt`` (constant time)."""
    if not sign:
        return False
    expected = push_sign(param, salt).encode("ascii")
    return hmac.compare_digest(expected, sign.strip().upper().encode("utf-8", "replace"))
