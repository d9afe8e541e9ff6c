"""Extensions, created unbound: ``create_app`` binds each one with ``init_app``."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from portal.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
mail = Mail()
login_manager = LoginManager()
login_manager.login_view = "staff.login"
# Limits are declared where they apply (e.g. the public forms); nothing is limited by default.
limiter = Limiter(key_func=get_remote_address)
