from django.urls import path

from apps.ground import views

urlpatterns = [
    path("driver/", views.driver_page, name="ground-driver"),
    path("tasks/<int:task_id>/", views.task_page, name="ground-task"),
    path("tasks/<int:task_id>/photos", views.task_photo, name="ground-task-photo"),
    path("tasks/<int:task_id>/key", views.task_key, name="ground-task-key"),
    path("tasks/<int:task_id>/assign", views.task_assign, name="ground-task-assign"),
    path("tasks/<int:task_id>/<str:action>", views.task_action, name="ground-task-action"),
    path("photos/<int:photo_id>.jpg", views.photo_file, name="ground-photo"),
    path("board/", views.board, name="ground-board"),
    path("keys-out.json", views.keys_out_json, name="ground-keys-out"),
    path("sheet/<str:code>/", views.sheet_page, name="ground-sheet"),
    path("sheet/<str:code>.pdf", views.sheet_pdf, name="ground-sheet-pdf"),
]
