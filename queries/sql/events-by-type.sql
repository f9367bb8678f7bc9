-- How many events of each type the store holds.
SELECT event_type, count(*) AS events FROM events GROUP BY 1 ORDER BY 2 DESC;
