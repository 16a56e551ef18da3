"""Operators: the `Operator` base class, the `op` decorator, and the tracing seam."""

from ._base import Operator as Operator
from ._base import operator_signature as operator_signature
from ._classify import Classification as Classification
from ._classify import PythonOperatorCall as PythonOperatorCall
from ._classify import classify as classify
from ._classify import guard_numeric as guard_numeric
from ._interception import current_call_handler as current_call_handler
from ._interception import intercept_calls as intercept_calls
from ._kinds import KindMemo as KindMemo
from ._kinds import engine_form as engine_form
from ._kinds import is_async_operator as is_async_operator
from ._method_leaf import is_model as is_model
from ._method_leaf import method_leaf as method_leaf
from ._op import FunctionOperator as FunctionOperator
from ._op import op as op
