"""Flower follows every task of a saga to its end: no task event of the workers is lost.

The workers run the threads pool: task-started and task-succeeded are sent from the pool's
threads while the worker's own thread flushes the events. Celery before 5.7 dropped some of
them, and Flower showed finished tasks as received for good.
"""

import httpx

from saga import TaskName
from tests.stack import Stack, wait_until
from tests.utils.registration import register, unique_email, wait_for_saga

# Every task a registration runs, each on its own worker.
REGISTRATION_TASKS = {
    TaskName.CREATE_PROFILE,
    TaskName.RECORD_ADDRESS,
    TaskName.COMPLETE_REGISTRATION,
    TaskName.SEND_WELCOME_EMAIL,
    TaskName.RECORD_STEP_EVENTS,
}


def _tasks_of(system: Stack, saga_id: str) -> dict[str, str]:
    """Flower's tasks whose id or arguments hold the saga id: name -> state."""
    params = {
        "draw": 1,
        "start": 0,
        "length": 100,
        "search[value]": saga_id,
        "order[0][column]": 0,
        "order[0][dir]": "asc",
        "columns[0][data]": "name",
    }
    response = httpx.get(f"http://127.0.0.1:{system.config.flower_port}/flower/tasks/datatable", params=params, timeout=5)
    response.raise_for_status()
    return {task["name"]: task["state"] for task in response.json()["data"]}


def test_flower_shows_every_task_of_a_registration_succeeded(system: Stack, client: httpx.Client) -> None:
    saga_id = register(client, system, unique_email("flower")).json()["saga"]["id"]
    wait_for_saga(client, system, saga_id, "completed")

    def all_succeeded() -> dict[str, str] | None:
        tasks = _tasks_of(system, saga_id)
        return tasks if set(tasks) >= REGISTRATION_TASKS and set(tasks.values()) == {"SUCCESS"} else None

    try:
        wait_until(all_succeeded, timeout=20, what="Flower to show every task of the saga succeeded")
    except TimeoutError:
        raise AssertionError(f"Flower shows {_tasks_of(system, saga_id)} for saga {saga_id}") from None
