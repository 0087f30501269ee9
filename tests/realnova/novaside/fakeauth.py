"""A paste filter standing in for keystonemiddleware's authtoken.

Nova 34 has no noauth pipeline any more. This filter accepts one token (the
``token`` in its paste section) and sets the headers authtoken would set
for an admin, so nova's own ``keystonecontext`` builds an admin context;
any other token gets the 401 keystonemiddleware would give.
"""


def filter_factory(global_conf, **local_conf):
    token = local_conf.get("token", "admin")

    def wrap(app):
        def middleware(environ, start_response):
            if environ.get("HTTP_X_AUTH_TOKEN") != token:
                start_response("401 Unauthorized", [
                    ("Content-Type", "application/json"),
                    ("WWW-Authenticate", "Keystone uri='none'")])
                return [b'{"error": {"code": 401, "title": "Unauthorized",'
                        b' "message": "The request you have made requires '
                        b'authentication."}}']
            environ["HTTP_X_IDENTITY_STATUS"] = "Confirmed"
            environ["HTTP_X_USER_ID"] = "poolmgr-test-admin"
            environ["HTTP_X_USER_NAME"] = "admin"
            environ["HTTP_X_PROJECT_ID"] = "poolmgr-test-project"
            environ["HTTP_X_PROJECT_NAME"] = "admin"
            environ["HTTP_X_ROLES"] = "admin,member,reader"
            return app(environ, start_response)
        return middleware
    return wrap
