"""The control library: one control per module.

Field controls (:class:`~appbook.kernels.ui.base.FieldControl`, bound to a field):
:class:`TextField`, :class:`Password`, :class:`TextArea`, :class:`CodeEditor`,
:class:`NumberField`, :class:`Slider`, :class:`Checkbox`, :class:`Switch`, :class:`Select`,
:class:`RadioButtons`, :class:`MultiSelect`, :class:`DateField`, :class:`TimeField`,
:class:`DateTimeField`, :class:`ReferenceField`, :class:`FileField`.

Display controls (plain widgets): :class:`Label`, :class:`RichText`, :class:`Hyperlink`,
:class:`Image`, :class:`PdfViewer`, :class:`Button`, :class:`ProgressBar`,
:class:`ConfirmationState`. :mod:`appbook.kernels.ui.defaults` picks a field control by kind.
"""

from __future__ import annotations

from ._common import CONTROLS_CSS, InputControl
from .button import Button
from .checkbox import Checkbox
from .code_editor import CodeEditor
from .confirmation import ConfirmationState
from .date_field import DateField
from .datetime_field import DateTimeField
from .file_field import FileField
from .hyperlink import Hyperlink
from .image import Image
from .label import Label
from .multiselect import MultiSelect
from .number import NumberField
from .password import Password
from .pdf_viewer import PdfViewer
from .progress import ProgressBar
from .radio import RadioButtons
from .reference import ReferenceField
from .rich_text import RichText
from .select import Select
from .slider import Slider
from .switch import Switch
from .text import TextField
from .textarea import TextArea
from .time_field import TimeField

__all__ = [
    "CONTROLS_CSS",
    "Button",
    "Checkbox",
    "CodeEditor",
    "ConfirmationState",
    "DateField",
    "DateTimeField",
    "FileField",
    "Hyperlink",
    "Image",
    "InputControl",
    "Label",
    "MultiSelect",
    "NumberField",
    "Password",
    "PdfViewer",
    "ProgressBar",
    "RadioButtons",
    "ReferenceField",
    "RichText",
    "Select",
    "Slider",
    "Switch",
    "TextArea",
    "TextField",
    "TimeField",
]
